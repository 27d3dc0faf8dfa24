// The Azure side of the ML release orchestrator (MLOPS_PLATFORM=azure).
//
// Deploy into the resource group that holds the existing Azure ML workspace and container
// registry (the app's AZURE_RESOURCE_GROUP), in two phases, because an Event Grid subscription
// with an AzureFunction endpoint is refused until the function exists in the app:
//
//   1. az deployment group create -g <rg> -f infra/main.bicep -p workspaceName=... acrName=... aksComputeName=... \
//        workspaceAppInsightsName=...
//   2. func azure functionapp publish <functionAppName> --python
//   3. the same command as 1 with -p deployEventSubscriptions=true
//
// Step by step, from an empty subscription: docs/azure.md. Choices and sources: infra/README.md.
// tests/unit/test_infra_consistency.py parses this file: every setting the code reads must be in
// the app settings below, and every event subscription must target a function of function_app.py
// with exactly the event types functions/service/subscriptions.py assigns to it.

targetScope = 'resourceGroup'

// ---- existing resources ---------------------------------------------------------------------

@description('Existing Azure ML workspace in this resource group (AZUREML_WORKSPACE).')
param workspaceName string

@description('Existing container registry in this resource group, without .azurecr.io (ACR_NAME). Best the workspace\'s own registry.')
param acrName string

@description('Kubernetes compute attached to the workspace, as named in Azure ML (AZUREML_AKS_COMPUTE).')
param aksComputeName string

@description('Name of the workspace\'s own Application Insights, in this resource group (the last part of `az ml workspace show --query application_insights`). The production deployments log their requests to it (app_insights_enabled); the app reads them for a rollout step\'s analysis (AZUREML_APP_INSIGHTS_ID, with Log Analytics Reader on it). Not the app\'s own Application Insights below.')
param workspaceAppInsightsName string

@description('Optional: the AKS cluster behind aksComputeName. When set, its kubelet identity gets AcrPull on the registry.')
param aksClusterName string = ''

@description('Resource group of the AKS cluster.')
param aksClusterResourceGroup string = resourceGroup().name

@description('Region of the new resources.')
param location string = resourceGroup().location

@description('Region of the workspace (a system topic lives in its source\'s region).')
param workspaceLocation string = location

@description('Region of the container registry.')
param acrLocation string = location

// ---- names --------------------------------------------------------------------------------------

@minLength(3)
@maxLength(16)
@description('Prefix of the names of the new resources.')
param namePrefix string = 'mlops'

// (Parameter defaults cannot use variables, hence uniqueString() repeated.)
param functionAppName string = '${namePrefix}-func-${uniqueString(resourceGroup().id, namePrefix)}'
param storageAccountName string = take(toLower(replace('st${namePrefix}${uniqueString(resourceGroup().id, namePrefix)}', '-', '')), 24)
param keyVaultName string = take('kv-${namePrefix}-${uniqueString(resourceGroup().id, namePrefix)}', 24)
param buildTopicName string = '${namePrefix}-builds-${uniqueString(resourceGroup().id, namePrefix)}'

@description('System topic of the workspace. Azure allows one system topic per source: if the workspace already has one, give its name here.')
param mlSystemTopicName string = '${workspaceName}-events'

@description('System topic of the registry (one per source, as above).')
param acrSystemTopicName string = '${acrName}-events'

param aciPullIdentityName string = '${namePrefix}-aci-acrpull'
param tags object = {}

// ---- staging on Azure Container Instances -------------------------------------------------------

@description('Existing resource group where staging container groups are created (ACI_RESOURCE_GROUP).')
param stagingResourceGroupName string = resourceGroup().name

@description('Region of the staging container groups (ACI_LOCATION).')
param stagingLocation string = location

@description('Role the Function App gets on the staging resource group. Default: "Azure Container Instances Contributor Role" (read/write container groups); Contributor (b24988ac-6180-42a0-ab88-20f7382dd24c) where that role is not available.')
param stagingRoleDefinitionId string = '5d977122-f97e-4b4d-a52f-6b43003ddb4d'

// ---- what the app does (app settings; the defaults are those of platforms/azure/settings.py) --

param computeName string = 'cpu-cluster'
param environmentName string = 'diabetes-train-env'
param experimentName string = 'diabetes-retraining'

@description('"diabetes" or a data asset URI (azureml:name:version).')
param trainingData string = 'diabetes'
@description('Path (in the deployed app) of a CSV with rows for endpoint tests; required when trainingData is a data asset.')
param testData string = ''
param modelName string = 'diabetes-model'
param endpointName string = 'diabetes-prod'
param acrRepository string = 'diabetes-scoring'

@description('Prefix of the release tables: <prefix>, <prefix>parked, <prefix>deadletters, <prefix>work.')
param tablesName string = 'releases'
@description('NCRONTAB schedule (six fields, UTC) of the reconcile timer: approvals, stuck steps, background work.')
param reconcileSchedule string = '0 * * * * *'

@description('NCRONTAB schedule (six fields, UTC) of the follow timer: it looks at deployments coming up and traffic changes in flight.')
param followSchedule string = '*/10 * * * * *'

param approvalTimeoutHours string = '72'

@description('MLOPS_RETRAIN_SCHEDULE: NCRONTAB (six fields, UTC, at most once a minute) of scheduled retraining, e.g. 0 0 3 * * MON; empty (the default) is off. The reconcile timer starts one release per occurrence.')
param retrainSchedule string = ''

@description('Promotion gate policy as JSON, e.g. {"mode": "non_inferiority", "margin": 50}; empty for the default policy.')
param gatePolicy string = ''

@description('MLOPS_TASK: regression or classification; empty: the training data\'s (breast_cancer is classification, else regression).')
@allowed(['', 'regression', 'classification'])
param task string = ''

@description('MLOPS_ESTIMATOR (JSON): {"estimator": "sklearn.linear_model.LogisticRegression", "params": {...}}; empty: the task\'s default estimator.')
param estimator string = ''

@description('Progressive rollout policy as JSON (MLOPS_ROLLOUT_POLICY, docs/rollout.md); empty for the default: shadow, then canary 10% -> 50% -> 100%. On AKS the shadow step is skipped: a Kubernetes online endpoint cannot mirror traffic (docs/azure.md, step 9).')
param rolloutPolicy string = ''

@description('Base URL in approval messages; empty for https://<functionAppName>.azurewebsites.net.')
param publicUrl string = ''

// ---- CI hooks (functions/entrypoints/hooks/) ----------------------------------------------

@description('User name of the Azure DevOps service hook (basic auth); not a secret.')
param hookUser string = 'azure-devops'

@secure()
@description('Azure DevOps service hook password. Written to Key Vault when given; never an app setting in plain text.')
param hookSecret string = ''

@secure()
@description('GitHub webhook secret. Written to Key Vault when given.')
param githubWebhookSecret string = ''

@description('Set on later deployments once hookSecret is in Key Vault, so the app keeps referencing it without passing it again.')
param hookSecretInVault bool = false

@description('Same for githubWebhookSecret.')
param githubWebhookSecretInVault bool = false

@secure()
@description('Secret of the generic hook (POST /api/hooks/generic: Jenkins, GitLab CI, Travis CI, any CI that can run openssl and curl). Written to Key Vault when given.')
param genericWebhookSecret string = ''

@description('Same for genericWebhookSecret.')
param genericWebhookSecretInVault bool = false

@description('MLOPS_GENERIC_WEBHOOK_TOLERANCE: how many seconds a generic delivery\'s signed timestamp may be from now (10..3600).')
param genericWebhookTolerance string = '300'

@description('MLOPS_GENERIC_WEBHOOK_TRUST_REQUESTER: true to take the body\'s requestedBy as the release\'s requester (the approval policy then refuses their self-approval); only when every holder of the secret is trusted to name the person.')
param genericWebhookTrustRequester string = 'false'

@description('Comma-separated GitHub workflow names or paths that count as builds; empty for all.')
param githubWorkflows string = ''

@description('GitHub login -> UPN/email of the person, as a JSON object (MLOPS_GITHUB_IDENTITIES), so that a release a GitHub workflow started has a requester the approval policy can compare; {} maps nobody.')
param githubIdentities string = '{}'

// ---- new training data (functions/domain/data_trigger.py; docs/architecture.md, on_storage_event) ----

@description('MLOPS_DATA_CONTAINER: a blob container in the app\'s storage account; a CSV created in it (under dataPrefix) starts a retraining release on that data. Empty (the default): off, and no container, system topic or subscription is deployed.')
param dataContainer string = ''

@description('MLOPS_DATA_PREFIX: only blobs whose name starts with this (e.g. diabetes/) count; empty for the whole container.')
param dataPrefix string = ''

@description('MLOPS_DATA_DEBOUNCE_SECONDS: blobs created within this many seconds of the first start one release, trained on the newest.')
param dataDebounceSeconds string = '300'

@description('MLOPS_PARKED_EVENT_TTL_HOURS: an event that came before its release was ready waits this long, then expires into a dead letter.')
param parkedEventTtlHours string = '24'

@description('MLOPS_MISSED_EVENT_CHECK_SECONDS: how long reconcile waits for a training run\'s or an image\'s event before asking the platform itself (empty: 900 for a run, 300 for an image).')
param missedEventCheckSeconds string = ''

@description('Principal (object) id of the identity the training jobs read their data with (the compute cluster\'s managed identity); gets Storage Blob Data Reader on dataContainer. Empty: grant it yourself.')
param dataReaderPrincipalId string = ''

// ---- who may approve (functions/domain/approval.py; docs/azure.md, step 3) -----------------------

@description('Application (client) id of the Entra app registration approvers sign in with (App Service Authentication, provider azureActiveDirectory). Bicep cannot create it: docs/azure.md, step 3. Empty: App Service Authentication is not configured and approve/reject accept signed links only.')
param authClientId string = ''

@description('Entra tenant (directory) id of that app registration and of the approvers.')
param authTenantId string = subscription().tenantId

@description('Approval policy as JSON (MLOPS_APPROVAL_POLICY), e.g. {"approvers": ["group:<object id>"], "required_approvals": 2}; {} for the default policy (any signed-in person but the requester, one approval).')
param approvalPolicy string = '{}'

@secure()
@description('Key of the signed, single-use approval links (MLOPS_LINK_SECRET), e.g. openssl rand -hex 32. Written to Key Vault when given; never an app setting in plain text.')
param linkSecret string = ''

@description('Set on later deployments once linkSecret is in Key Vault, so the app keeps referencing it without passing it again.')
param linkSecretInVault bool = false

// ---- notifications (docs/notifications.md) --------------------------------------------------------

@secure()
@description('Where people are told (MLOPS_NOTIFICATION_TARGETS): whitespace-separated FORMAT:URL or NAME=FORMAT:URL entries, FORMAT teams, slack or json, https URLs. The URLs are credentials (whoever holds one can post to the channel): written to Key Vault when given, never an app setting in plain text.')
param notificationTargets string = ''

@description('Set on later deployments once notificationTargets is in Key Vault, so the app keeps referencing it without passing it again.')
param notificationTargetsInVault bool = false

// ---- Event Grid ---------------------------------------------------------------------------------

@description('Phase 2: create the event subscriptions, once the functions are published.')
param deployEventSubscriptions bool = false

@minValue(1)
@maxValue(30)
@description('Delivery attempts before an event is dead-lettered. The app acknowledges events it cannot process (it keeps its own dead letters), so Event Grid only retries transient failures.')
param maxDeliveryAttempts int = 10

@minValue(1)
@maxValue(1440)
@description('Minutes an event is retried before it is dead-lettered. The reconcile timer recovers a release whose event was lost.')
param eventTimeToLiveInMinutes int = 1440

@description('Refuse the build topic\'s access keys: Entra ID only (the app and CI identities with EventGrid Data Sender). Set false only for a CI pipeline that publishes with a topic key (EVENTGRID_TOPIC_KEY: publishWith=key in Azure Pipelines, the key line of the GitHub workflow).')
param disableTopicAccessKeys bool = true

@description('Optional object id of the CI pipeline\'s service principal: it gets "EventGrid Data Sender" on the build topic.')
param ciPrincipalId string = ''

// ---- Function App scale -------------------------------------------------------------------------

param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// ---- built-in roles -----------------------------------------------------------------------------
// Role definition ids as published in Microsoft Learn, "Azure built-in roles"
// (learn.microsoft.com/azure/role-based-access-control/built-in-roles and its category pages
// built-in-roles/{ai-machine-learning,containers,identity,storage,integration,security,monitor}).

var roles = {
  azureMLDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121' // ai-machine-learning: all workspace actions except compute create/delete and workspace write
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d' // containers: registries/pull/read
  containerRegistryTasksContributor: 'fb382eab-e894-4461-af04-94435c366c3f' // containers: scheduleRun/action, listBuildSourceUploadUrl/action, runs/read, runs/listLogSasUrl/action...
  managedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830' // identity: userAssignedIdentities/*/read, */assign/action
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // storage
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // storage
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // storage: read blobs
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // storage
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7' // integration: events/send/action
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // security: secrets/getSecret/action
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // monitor: Metrics/Write, Telemetry/Write
  logAnalyticsReader: '73c42c96-874c-492b-b04d-ab87d138a893' // monitor: */read, workspaces/analytics/query/action, workspaces/search/action
}

var suffix = uniqueString(resourceGroup().id, namePrefix)
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletters'
var hookSecretName = 'mlops-hook-secret'
var githubWebhookSecretName = 'mlops-github-webhook-secret'
var genericWebhookSecretName = 'mlops-generic-webhook-secret'
var linkSecretName = 'mlops-link-secret'
var notificationTargetsName = 'mlops-notification-targets'
var appUrl = empty(publicUrl) ? 'https://${functionAppName}.azurewebsites.net' : publicUrl
var useHookSecret = hookSecretInVault || !empty(hookSecret)
var useGithubWebhookSecret = githubWebhookSecretInVault || !empty(githubWebhookSecret)
var useGenericWebhookSecret = genericWebhookSecretInVault || !empty(genericWebhookSecret)
var watchData = !empty(dataContainer)
var useLinkSecret = linkSecretInVault || !empty(linkSecret)
var useNotificationTargets = notificationTargetsInVault || !empty(notificationTargets)

// ---- existing -----------------------------------------------------------------------------------

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: acrName
}

// Where the production deployments' request telemetry lands (the workspace's, not the app's own below).
resource workspaceAppInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: workspaceAppInsightsName
}

// ---- storage: host storage (identity-based), deployment package, release tables, dead letters -

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: default action Allow on purpose: the Flex Consumption app has no VNet integration here, so its host, the release store and `func publish` reach the account over its public endpoint; shared keys are off, so every request needs an Entra role
  // checkov:skip=CKV_AZURE_43: the name is an expression checkov cannot evaluate: take(toLower(replace('st<namePrefix><uniqueString>', '-', '')), 24), lowercase letters and digits for a namePrefix of letters, digits and hyphens, 18-24 characters
  name: storageAccountName
  location: location
  tags: tags
  sku: {
    name: 'Standard_GRS' // the release store (tables) is the app's state: a copy in the paired region; LRS -> GRS converts in place
  }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // every client uses Entra ID: the app, the host, Event Grid dead-lettering
    defaultToOAuthAuthentication: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

// New training data lands here (MLOPS_DATA_CONTAINER); its BlobCreated events start retraining.
resource dataBlobContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (watchData) {
  parent: blobService
  name: watchData ? dataContainer : 'unused'
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The release store's tables (platforms/azure/table_store.py); created here so the app never needs to.
resource releaseTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for table in [
    tablesName
    '${tablesName}parked'
    '${tablesName}deadletters'
    '${tablesName}work'
  ]: {
    parent: tableService
    name: table
  }
]

// ---- monitoring -----------------------------------------------------------------------------------

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-appi-${suffix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true // telemetry is sent with the app's identity (Monitoring Metrics Publisher)
  }
}

// ---- Key Vault: the CI hook secrets ---------------------------------------------------------------

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: no firewall on purpose: the Function App resolves its Key Vault references over the public endpoint (no VNet integration here); access is RBAC only, the app holds Key Vault Secrets User
  // checkov:skip=CKV_AZURE_189: public network access on purpose, for the same reason as CKV_AZURE_109
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90 // the default, written out: it cannot change after creation
    enablePurgeProtection: true // cannot be turned off again; a deleted vault keeps its name for 90 days (docs/azure.md, step 11)
  }
}

resource hookSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(hookSecret)) {
  // checkov:skip=CKV_AZURE_41: a webhook shared secret, rotated together with the CI side (service hook password, GitHub webhook secret); an expiry date would make the Key Vault reference stop resolving and the hook fail at that date
  // checkov:skip=CKV_AZURE_114: contentType is set (text/plain) below; checkov 3.3 does not look inside a conditional resource (= if (...)) and reports it missing
  parent: vault
  name: hookSecretName
  properties: {
    value: hookSecret
    contentType: 'text/plain'
  }
}

resource githubWebhookSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(githubWebhookSecret)) {
  // checkov:skip=CKV_AZURE_41: a webhook shared secret, rotated together with the CI side (service hook password, GitHub webhook secret); an expiry date would make the Key Vault reference stop resolving and the hook fail at that date
  // checkov:skip=CKV_AZURE_114: contentType is set (text/plain) below; checkov 3.3 does not look inside a conditional resource (= if (...)) and reports it missing
  parent: vault
  name: githubWebhookSecretName
  properties: {
    value: githubWebhookSecret
    contentType: 'text/plain'
  }
}

resource genericWebhookSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(genericWebhookSecret)) {
  // checkov:skip=CKV_AZURE_41: a webhook shared secret, rotated together with the CI side (the CI's stored credential); an expiry date would make the Key Vault reference stop resolving and the hook fail at that date
  // checkov:skip=CKV_AZURE_114: contentType is set (text/plain) below; checkov 3.3 does not look inside a conditional resource (= if (...)) and reports it missing
  parent: vault
  name: genericWebhookSecretName
  properties: {
    value: genericWebhookSecret
    contentType: 'text/plain'
  }
}

resource linkSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(linkSecret)) {
  // checkov:skip=CKV_AZURE_41: the approval links' signing key, rotated by deploying a new linkSecret (outstanding links then stop working, as they should); an expiry date would make the Key Vault reference stop resolving and every link be refused at that date
  // checkov:skip=CKV_AZURE_114: contentType is set (text/plain) below; checkov 3.3 does not look inside a conditional resource (= if (...)) and reports it missing
  parent: vault
  name: linkSecretName
  properties: {
    value: linkSecret
    contentType: 'text/plain'
  }
}

resource notificationTargetsValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(notificationTargets)) {
  // checkov:skip=CKV_AZURE_41: webhook URLs, rotated by deploying new ones (a Teams Workflows or Slack URL does not expire); an expiry date would make the reference stop resolving and every notification fail at that date
  // checkov:skip=CKV_AZURE_114: contentType is set (text/plain) below; checkov 3.3 does not look inside a conditional resource (= if (...)) and reports it missing
  parent: vault
  name: notificationTargetsName
  properties: {
    value: notificationTargets
    contentType: 'text/plain'
  }
}

// ---- the identity staging container groups pull the scoring image with (ACI_IDENTITY) ----------

resource aciPullIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: aciPullIdentityName
  location: location
  tags: tags
}

// ---- Event Grid: the build topic (CI publishes MLOps.BuildCompleted) and two system topics -------

resource buildTopic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_193: public network access on purpose: CI publishes MLOps.BuildCompleted from hosted agents and runners (Azure Pipelines, GitHub Actions), whose addresses are not fixed; every publisher must still authenticate (Entra ID, or a key where disableTopicAccessKeys=false)
  name: buildTopicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned' // writes dead letters to storage
  }
  properties: {
    inputSchema: 'EventGridSchema'
    publicNetworkAccess: 'Enabled'
    disableLocalAuth: disableTopicAccessKeys
  }
}

resource mlTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: mlSystemTopicName
  location: workspaceLocation
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

resource acrTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: acrSystemTopicName
  location: acrLocation
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: registry.id
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
}

// The app's storage account, for new training data (only when dataContainer is set).
resource storageTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (watchData) {
  name: '${namePrefix}-storage-events-${suffix}'
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// ---- the Function App (Flex Consumption, Linux, Python 3.11, system-assigned identity) ----------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: not zone redundant on purpose: a zone-redundant Flex Consumption plan keeps at least two always-ready instances per function group, billed all the time (no scale to zero), in some regions only, with ZRS storage; a zone outage only delays releases (Event Grid retries for a day, the reconcile timer resumes stuck steps)
  name: '${namePrefix}-plan-${suffix}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_213: Flex Consumption has no platform health check (siteConfig.healthCheckPath is an App Service / Premium feature); GET /api/health is there for an external probe
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales instances itself, from zero (siteConfig.numberOfWorkers is for dedicated plans); lost events are retried by Event Grid and recovered by the reconcile timer
  // checkov:skip=CKV_AZURE_222: public network access on purpose: Event Grid deliveries, the Azure DevOps service hook, the GitHub webhook, approvers' browsers and approval links reach the app over the internet; the read routes need a function key, approve/reject a proven identity (Entra sign-in or a signed link), the hooks their secrets
  // checkov:skip=CKV_AZURE_17: no client certificates: none of the callers (Event Grid, Azure DevOps, GitHub, people approving) presents one
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // On Flex Consumption the language is declared here; FUNCTIONS_WORKER_RUNTIME and
      // FUNCTIONS_EXTENSION_VERSION are deprecated app settings there and are left out on purpose.
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // -- the Functions host
        {
          name: 'AzureWebJobsStorage__accountName' // identity-based host storage: no connection string, no key
          value: storage.name
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'Authorization=AAD'
        }
        // -- functions/settings.py
        {
          name: 'MLOPS_PLATFORM'
          value: 'azure'
        }
        {
          name: 'MLOPS_HOME' // scratch space (image build contexts); the app's own files are read-only
          value: '/tmp/mlops'
        }
        {
          name: 'MLOPS_HOST_URL'
          value: appUrl
        }
        {
          name: 'MLOPS_PUBLIC_URL'
          value: appUrl
        }
        {
          name: 'MLOPS_PRODUCTION_PORT' // read by functions/settings.py; only the local deployer uses it
          value: '5101'
        }
        {
          name: 'MLOPS_TRAINING_DATA' // the local platform's data; Azure uses AZUREML_TRAINING_DATA
          value: trainingData
        }
        {
          name: 'MLOPS_APPROVAL_TIMEOUT_HOURS'
          value: approvalTimeoutHours
        }
        {
          name: 'MLOPS_TASK'
          value: task
        }
        {
          name: 'MLOPS_RETRAIN_SCHEDULE'
          value: retrainSchedule
        }
        // -- new training data (functions/domain/data_trigger.py); an empty container is off
        {
          name: 'MLOPS_DATA_CONTAINER'
          value: dataContainer
        }
        {
          name: 'MLOPS_DATA_PREFIX'
          value: dataPrefix
        }
        {
          name: 'MLOPS_DATA_DEBOUNCE_SECONDS'
          value: dataDebounceSeconds
        }
        {
          name: 'MLOPS_PARKED_EVENT_TTL_HOURS'
          value: parkedEventTtlHours
        }
        {
          name: 'MLOPS_MISSED_EVENT_CHECK_SECONDS'
          value: missedEventCheckSeconds
        }
        {
          name: 'MLOPS_ESTIMATOR'
          value: estimator
        }
        {
          name: 'MLOPS_GATE_POLICY'
          value: gatePolicy
        }
        {
          name: 'MLOPS_ROLLOUT_POLICY'
          value: rolloutPolicy
        }
        {
          name: 'MLOPS_RECONCILE_SCHEDULE' // function_app.py binds the reconcile timer to %MLOPS_RECONCILE_SCHEDULE%
          value: reconcileSchedule
        }
        {
          name: 'MLOPS_FOLLOW_SCHEDULE' // function_app.py binds the follow timer to %MLOPS_FOLLOW_SCHEDULE%
          value: followSchedule
        }
        // -- platforms/azure/settings.py (SETTINGS)
        {
          name: 'AZURE_SUBSCRIPTION_ID'
          value: subscription().subscriptionId
        }
        {
          name: 'AZURE_RESOURCE_GROUP'
          value: resourceGroup().name
        }
        {
          name: 'AZUREML_WORKSPACE'
          value: workspaceName
        }
        {
          name: 'AZUREML_COMPUTE'
          value: computeName
        }
        {
          name: 'AZUREML_ENVIRONMENT'
          value: environmentName
        }
        {
          name: 'AZUREML_EXPERIMENT'
          value: experimentName
        }
        {
          name: 'AZUREML_TRAINING_DATA'
          value: trainingData
        }
        {
          name: 'AZUREML_TEST_DATA' // CSV shipped with the app; required when trainingData is a data asset
          value: testData
        }
        {
          name: 'AZUREML_MODEL_NAME'
          value: modelName
        }
        {
          name: 'AZUREML_AKS_COMPUTE'
          value: aksComputeName
        }
        {
          name: 'AZUREML_ENDPOINT'
          value: endpointName
        }
        {
          name: 'AZUREML_APP_INSIGHTS_ID' // the production deployments' requests: a rollout's evidence
          value: workspaceAppInsights.id
        }
        {
          name: 'ACR_NAME'
          value: acrName
        }
        {
          name: 'ACR_REPOSITORY'
          value: acrRepository
        }
        {
          name: 'ACI_LOCATION'
          value: stagingLocation
        }
        {
          name: 'ACI_RESOURCE_GROUP'
          value: stagingResourceGroupName
        }
        {
          name: 'ACI_IDENTITY'
          value: aciPullIdentity.id
        }
        {
          name: 'MLOPS_TABLES_ENDPOINT'
          value: 'https://${storage.name}.table.${environment().suffixes.storage}'
        }
        {
          name: 'MLOPS_TABLES_NAME'
          value: tablesName
        }
        {
          name: 'EVENTGRID_TOPIC_ENDPOINT'
          value: buildTopic.properties.endpoint
        }
        // -- functions/entrypoints/hooks/: secrets only as Key Vault references (empty: that hook answers 503)
        {
          name: 'MLOPS_HOOK_USER'
          value: hookUser
        }
        {
          name: 'MLOPS_HOOK_SECRET'
          value: useHookSecret ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${hookSecretName})' : ''
        }
        {
          name: 'MLOPS_GITHUB_WEBHOOK_SECRET'
          value: useGithubWebhookSecret ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${githubWebhookSecretName})' : ''
        }
        {
          name: 'MLOPS_GENERIC_WEBHOOK_SECRET'
          value: useGenericWebhookSecret ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${genericWebhookSecretName})' : ''
        }
        {
          name: 'MLOPS_GENERIC_WEBHOOK_TOLERANCE'
          value: genericWebhookTolerance
        }
        {
          name: 'MLOPS_GENERIC_WEBHOOK_TRUST_REQUESTER'
          value: genericWebhookTrustRequester
        }
        {
          name: 'MLOPS_GITHUB_WORKFLOWS'
          value: githubWorkflows
        }
        {
          name: 'MLOPS_GITHUB_IDENTITIES'
          value: githubIdentities
        }
        // -- approvals (functions/domain/approval.py): the policy, and the key of signed links (empty: links are refused)
        {
          name: 'MLOPS_APPROVAL_POLICY'
          value: approvalPolicy
        }
        {
          name: 'MLOPS_LINK_SECRET'
          value: useLinkSecret ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${linkSecretName})' : ''
        }
        // -- notifications: the webhook targets (their URLs are credentials, so a Key Vault reference)
        {
          name: 'MLOPS_NOTIFICATION_TARGETS'
          value: useNotificationTargets ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${notificationTargetsName})' : ''
        }
      ]
    }
  }
  dependsOn: [
    deploymentContainer
    vault
  ]
}

// ---- App Service Authentication (Easy Auth) with Microsoft Entra ID ---------------------------------
// Who approves is proven, never typed: the platform signs people in (/.auth/login/aad) and hands the app
// the proven principal (modules/web-auth.bicep says how and why). Bicep cannot create the app
// registration: docs/azure.md, step 3.

module appAuth 'modules/web-auth.bicep' = if (!empty(authClientId)) {
  name: 'web-auth'
  params: {
    functionAppName: functionApp.name
    clientId: authClientId
    tenantId: authTenantId
  }
}

// ---- role assignments: the Function App's identity ----------------------------------------------

// Submit pipeline jobs, register models and environments, manage the Kubernetes online endpoint.
resource appOnWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, functionApp.id, roles.azureMLDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMLDataScientist)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// ACR Tasks quick builds: listBuildSourceUploadUrl, scheduleRun, runs (status, output images). No data-plane
// role: the task run pushes the image with the registry's own token, and platforms/azure/images.py finds tags
// in the run history (management plane), so the app never pulls or pushes itself (hence no AcrPush).
resource appRunsAcrTasks 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, functionApp.id, roles.containerRegistryTasksContributor)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.containerRegistryTasksContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Staging container groups run with the pull identity: assigning it needs .../assign/action.
resource appAssignsPullIdentity 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(aciPullIdentity.id, functionApp.id, roles.managedIdentityOperator)
  scope: aciPullIdentity
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.managedIdentityOperator)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Host storage (timer leases, host keys) and the Flex deployment package.
resource appOwnsBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The release store (MLOPS_TABLES_ENDPOINT).
resource appWritesTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// MLOps.ReleaseStateChanged / ReleaseNotification events on the build topic.
resource appSendsEvents 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(buildTopic.id, functionApp.id, roles.eventGridDataSender)
  scope: buildTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault references in the app settings resolve with the app's identity.
resource appReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionApp.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry to Application Insights with local (key) auth disabled.
resource appSendsTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionApp.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Read the production deployments' requests (a rollout step's evidence, platforms/azure/evidence.py): one
// resource-context query of the workspace's Application Insights, so the role is on that component only.
resource appReadsProductionRequests 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspaceAppInsights.id, functionApp.id, roles.logAnalyticsReader)
  scope: workspaceAppInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.logAnalyticsReader)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Create and delete staging container groups (in another resource group: a module sets the scope).
module stagingAccess 'modules/staging-access.bicep' = {
  name: 'staging-access'
  scope: resourceGroup(stagingResourceGroupName)
  params: {
    principalId: functionApp.identity.principalId
    roleDefinitionId: stagingRoleDefinitionId
    assignmentSeed: functionApp.id
  }
}

// ---- role assignments: the other identities -------------------------------------------------------

// ACI pulls the scoring image with the user-assigned identity.
resource pullIdentityPullsImages 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, aciPullIdentity.id, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: aciPullIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Production pods on AKS pull the scoring image with the cluster's kubelet identity.
module aksPullsImages 'modules/aks-acrpull.bicep' = if (!empty(aksClusterName)) {
  name: 'aks-acrpull'
  params: {
    acrName: acrName
    aksClusterName: aksClusterName
    aksClusterResourceGroup: aksClusterResourceGroup
  }
}

// The CI pipeline publishes MLOps.BuildCompleted with its own Entra identity.
resource ciSendsEvents 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(ciPrincipalId)) {
  name: guid(buildTopic.id, ciPrincipalId, roles.eventGridDataSender)
  scope: buildTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: ciPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Each topic writes its dead letters with its own identity (the account accepts no shared key).
resource buildTopicWritesDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, buildTopic.id, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: buildTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource mlTopicWritesDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, mlTopic.id, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: mlTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource acrTopicWritesDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, acrTopic.id, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: acrTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storageTopicWritesDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (watchData) {
  name: guid(deadLetterContainer.id, storage.id, 'storage-events', roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: watchData ? storageTopic.identity.principalId : ''
    principalType: 'ServicePrincipal'
  }
}

// The training jobs read the new blob (its https URL is the job's data input) with this identity.
resource trainingReadsData 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (watchData && !empty(dataReaderPrincipalId)) {
  name: guid(storage.id, dataContainer, dataReaderPrincipalId, roles.storageBlobDataReader)
  scope: dataBlobContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: dataReaderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- event subscriptions (phase 2), one per Event Grid function ---------------------------------
// includedEventTypes must equal functions.service.subscriptions.FUNCTION_EVENT_TYPES[<function>] (tested).

resource onBuildEvent 'Microsoft.EventGrid/eventSubscriptions@2025-02-15' = if (deployEventSubscriptions) {
  name: 'on-build-event'
  scope: buildTopic
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/on_build_event'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'MLOps.BuildCompleted'
        'MLOps.ReleaseApproved'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
  dependsOn: [
    buildTopicWritesDeadLetters
  ]
}

resource onMlEvent 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deployEventSubscriptions) {
  parent: mlTopic
  name: 'on-ml-event'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/on_ml_event'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.MachineLearningServices.RunCompleted'
        'Microsoft.MachineLearningServices.RunStatusChanged'
        'Microsoft.MachineLearningServices.ModelRegistered'
        'Microsoft.MachineLearningServices.DatasetDriftDetected'
      ]
      // RunStatusChanged only for Failed/Canceled. Advanced filters are ANDed and apply to every
      // event type, so "StringIn [Failed, Canceled]" would also drop the other three types (they
      // have no runStatus, and StringIn does not match a missing key). StringNotIn does match a
      // missing key (Event Grid docs, "event filtering": NumberNotIn/StringNotIn are evaluated as
      // matched), so the other types pass and RunStatusChanged passes unless its status is listed
      // here. Completed is listed because RunCompleted already reports it. A status Azure ML adds
      // later would pass; on_ml_event ignores any status that is not terminal.
      advancedFilters: [
        {
          operatorType: 'StringNotIn'
          key: 'data.runStatus'
          values: [
            'NotStarted'
            'Queued'
            'Preparing'
            'Provisioning'
            'Starting'
            'Running'
            'Finalizing'
            'CancelRequested'
            'Completed'
            'NotResponding'
            'Paused'
            'Unknown'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
  dependsOn: [
    mlTopicWritesDeadLetters
  ]
}

resource onRegistryEvent 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deployEventSubscriptions) {
  parent: acrTopic
  name: 'on-registry-event'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/on_registry_event'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.ContainerRegistry.ImagePushed'
        'Microsoft.ContainerRegistry.ImageDeleted'
      ]
      // Only the scoring image's repository, not every push to the registry.
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.target.repository'
          values: [
            acrRepository
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
  dependsOn: [
    acrTopicWritesDeadLetters
  ]
}

resource onStorageEvent 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deployEventSubscriptions && watchData) {
  parent: storageTopic
  name: 'on-storage-event'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/on_storage_event'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // Only the data container under its prefix: not the app package, the dead letters, or other data.
      subjectBeginsWith: '/blobServices/default/containers/${dataContainer}/blobs/${dataPrefix}'
      // Files only (not directory creates on a hierarchical namespace).
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.blobType'
          values: [
            'BlockBlob'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
  dependsOn: [
    storageTopicWritesDeadLetters
  ]
}

// ---- outputs --------------------------------------------------------------------------------------

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output buildTopicEndpoint string = buildTopic.properties.endpoint
output storageAccountName string = storage.name
output keyVaultName string = vault.name
output aciIdentityId string = aciPullIdentity.id
output eventSubscriptionsDeployed bool = deployEventSubscriptions
output authEnabled bool = !empty(authClientId)

@description('The redirect URI the Entra app registration needs for approvers\' browser sign-in (docs/azure.md, step 3).')
output authRedirectUri string = 'https://${functionApp.properties.defaultHostName}/.auth/login/aad/callback'

@description('The settings `mlops azure bootstrap` and `mlops publish build-completed` read, for a shell: see docs/azure.md.')
output settings object = {
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  AZURE_RESOURCE_GROUP: resourceGroup().name
  AZUREML_WORKSPACE: workspaceName
  AZUREML_COMPUTE: computeName
  AZUREML_ENVIRONMENT: environmentName
  AZUREML_EXPERIMENT: experimentName
  AZUREML_TRAINING_DATA: trainingData
  AZUREML_TEST_DATA: testData
  AZUREML_MODEL_NAME: modelName
  AZUREML_AKS_COMPUTE: aksComputeName
  AZUREML_ENDPOINT: endpointName
  AZUREML_APP_INSIGHTS_ID: workspaceAppInsights.id
  ACR_NAME: acrName
  ACR_REPOSITORY: acrRepository
  ACI_LOCATION: stagingLocation
  ACI_RESOURCE_GROUP: stagingResourceGroupName
  ACI_IDENTITY: aciPullIdentity.id
  MLOPS_TABLES_ENDPOINT: 'https://${storage.name}.table.${environment().suffixes.storage}'
  MLOPS_TABLES_NAME: tablesName
  EVENTGRID_TOPIC_ENDPOINT: buildTopic.properties.endpoint
}
