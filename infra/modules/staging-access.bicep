// The Function App's role on the staging resource group (ACI_RESOURCE_GROUP), where it creates and
// deletes one container group per release. A module because that group may differ from the
// deployment's own resource group. Used by ../main.bicep.

targetScope = 'resourceGroup'

@description('Object id of the Function App\'s system-assigned identity.')
param principalId string

@description('Role definition GUID; main.bicep passes "Azure Container Instances Contributor Role" (5d977122-f97e-4b4d-a52f-6b43003ddb4d) by default.')
param roleDefinitionId string

@description('A value known at the start of the deployment (the Function App\'s resource id) for a stable assignment name.')
param assignmentSeed string

resource stagingRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, assignmentSeed, roleDefinitionId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ML release orchestrator: staging container groups'
  }
}
