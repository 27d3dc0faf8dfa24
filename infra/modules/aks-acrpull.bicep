// AcrPull on the registry for the kubelet identity of the AKS cluster behind the workspace's
// Kubernetes compute, so production pods can pull the scoring image. A module so that the
// existing cluster is only looked up when main.bicep is given its name.

targetScope = 'resourceGroup'

@description('Registry in this resource group.')
param acrName string

param aksClusterName string
param aksClusterResourceGroup string

// AcrPull, from Microsoft Learn "Azure built-in roles", containers category.
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: acrName
}

resource aksCluster 'Microsoft.ContainerService/managedClusters@2024-05-01' existing = {
  name: aksClusterName
  scope: resourceGroup(aksClusterResourceGroup)
}

resource kubeletPullsImages 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, aksCluster.id, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: aksCluster.properties.identityProfile.kubeletidentity.objectId
    principalType: 'ServicePrincipal'
  }
}
