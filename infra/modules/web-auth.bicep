// App Service Authentication ("Easy Auth") with Microsoft Entra ID on the Function App: the site's
// authsettingsV2 (Microsoft.Web 2024-04-01 SiteAuthSettingsV2). main.bicep deploys it when authClientId
// is given; docs/azure.md, step 3, creates the app registration it names.
//
// Who approves is proven, never typed: the platform signs people in (/.auth/login/aad) and hands the
// app the proven principal in X-MS-CLIENT-PRINCIPAL*, headers it strips from incoming requests while
// Authentication is on; the app trusts them only while WEBSITE_AUTH_ENABLED (set by the platform, never
// an app setting) says so. Unauthenticated requests are let through (AllowAnonymous) because Event
// Grid, the CI hooks, signed links and the function-key read routes carry no Entra identity;
// approve/reject answer 401 JSON themselves without one.
//
// No client secret (registration.clientSecretSettingName): Easy Auth then signs people in with an ID
// token, which the app registration must allow (--enable-id-token-issuance).

@description('The Function App (in this resource group).')
param functionAppName string

@description('Application (client) id of the Entra app registration approvers sign in with.')
param clientId string

@description('Entra tenant (directory) id of the app registration and the approvers.')
param tenantId string

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov applies its checks of every Microsoft.Web/sites/config to this one whatever its name; these read properties of other config documents ('authsettings' V1, 'web', 'azurestorageaccounts'), which authsettingsV2 does not have:
  // checkov:skip=CKV_AZURE_13: App Service Authentication is on here (properties.platform.enabled, the authsettingsV2 schema, which CKV_AZURE_56 checks and passes); CKV_AZURE_13 reads the V1 'authsettings' field properties.enabled
  // checkov:skip=CKV_AZURE_63: httpLoggingEnabled belongs to the 'web' config; the app's requests and failures go to Application Insights
  // checkov:skip=CKV_AZURE_65: detailedErrorLoggingEnabled belongs to the 'web' config, not to authsettingsV2
  // checkov:skip=CKV_AZURE_66: requestTracingEnabled belongs to the 'web' config, not to authsettingsV2
  // checkov:skip=CKV_AZURE_80: netFrameworkVersion belongs to the 'web' config; the app is Python (functionAppConfig.runtime), no .NET Framework
  // checkov:skip=CKV_AZURE_88: azureStorageAccounts belongs to the 'azurestorageaccounts' config; the app mounts no file share (Flex Consumption, state in Table Storage)
  // checkov:skip=CKV_AZURE_222: publicNetworkAccess belongs to the site (skipped there with its reason: Event Grid, the hooks, approvers' browsers and links come over the internet)
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous' // the app answers 401 JSON itself; a page would send people to /.auth/login/aad
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0' // https://login.microsoftonline.com/<tenant>/v2.0: this tenant only
        }
        validation: {
          allowedAudiences: [
            'api://${clientId}' // the registration's identifier URI; the client id itself is always accepted
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false // the app needs the signed-in principal only, never the provider's tokens; a blob token store would need a SAS URL, i.e. shared keys, which the storage account refuses
      }
    }
    httpSettings: {
      requireHttps: true
    }
  }
}
