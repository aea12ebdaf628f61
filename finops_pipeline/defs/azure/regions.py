"""Azure region names (the `name` of `az account list-locations`) -> display names, and ARM resource types -> the
display names Microsoft's FOCUS export writes as ResourceType.

Cost details give only the location (`resourceLocation`, e.g. `eastus` or `EastUS`) and the ARM resource id;
Microsoft's FOCUS export writes RegionName ("East US") and ResourceType (a display name, with the ARM type in
x_ResourceType). A location missing here keeps its code as its name (FOCUS: RegionName set when RegionId is);
a resource type missing here keeps its ARM type (provider/type, lower case)."""

from __future__ import annotations

from finops_pipeline.schema import lookup_sql

AZURE_REGION_NAMES: dict[str, str] = {
    "eastus": "East US", "eastus2": "East US 2", "southcentralus": "South Central US", "westus2": "West US 2",
    "westus3": "West US 3", "australiaeast": "Australia East", "southeastasia": "Southeast Asia", "northeurope": "North Europe",
    "swedencentral": "Sweden Central", "uksouth": "UK South", "westeurope": "West Europe", "centralus": "Central US",
    "southafricanorth": "South Africa North", "centralindia": "Central India", "eastasia": "East Asia", "japaneast": "Japan East",
    "koreacentral": "Korea Central", "canadacentral": "Canada Central", "francecentral": "France Central",
    "germanywestcentral": "Germany West Central", "italynorth": "Italy North", "norwayeast": "Norway East",
    "polandcentral": "Poland Central", "spaincentral": "Spain Central", "switzerlandnorth": "Switzerland North",
    "mexicocentral": "Mexico Central", "uaenorth": "UAE North", "brazilsouth": "Brazil South", "israelcentral": "Israel Central",
    "qatarcentral": "Qatar Central", "northcentralus": "North Central US", "westus": "West US", "westcentralus": "West Central US",
    "japanwest": "Japan West", "koreasouth": "Korea South", "southindia": "South India", "westindia": "West India",
    "canadaeast": "Canada East", "francesouth": "France South", "germanynorth": "Germany North", "norwaywest": "Norway West",
    "switzerlandwest": "Switzerland West", "ukwest": "UK West", "uaecentral": "UAE Central", "brazilsoutheast": "Brazil Southeast",
    "australiacentral": "Australia Central", "australiacentral2": "Australia Central 2", "australiasoutheast": "Australia Southeast",
    "southafricawest": "South Africa West", "swedensouth": "Sweden South", "jioindiawest": "Jio India West",
    "jioindiacentral": "Jio India Central", "newzealandnorth": "New Zealand North", "indonesiacentral": "Indonesia Central",
    "malaysiawest": "Malaysia West", "chilecentral": "Chile Central", "global": "Global", "unassigned": "Unassigned",
}

# ARM type (lower case) -> the ResourceType display name of Microsoft's FOCUS export.
AZURE_RESOURCE_TYPES: dict[str, str] = {
    "microsoft.compute/virtualmachines": "Virtual machine",
    "microsoft.compute/virtualmachinescalesets": "Virtual machine scale set",
    "microsoft.compute/disks": "Disk",
    "microsoft.compute/snapshots": "Snapshot",
    "microsoft.storage/storageaccounts": "Storage account",
    "microsoft.sql/servers": "SQL server",
    "microsoft.sql/servers/databases": "SQL database",
    "microsoft.web/sites": "App Service web app",
    "microsoft.web/serverfarms": "App Service plan",
    "microsoft.network/publicipaddresses": "Public IP address",
    "microsoft.network/loadbalancers": "Load balancer",
    "microsoft.containerservice/managedclusters": "Kubernetes service",
    "microsoft.keyvault/vaults": "Key vault",
    "microsoft.documentdb/databaseaccounts": "Azure Cosmos DB account",
    "microsoft.resources/resourcegroups": "Resource group",
    "microsoft.resources/subscriptions": "Subscription",
}


def region_name_sql(expression: str) -> str:
    """RegionName of a normalized location code (lower case, no spaces) in SQL; an unknown code is its own name."""
    return lookup_sql(expression, AZURE_REGION_NAMES, expression)


def arm_type_sql(resource_id: str) -> str:
    """The ARM type (`provider/type[/child]`, lower case) of a resource id in SQL, NULL when it is not an ARM id."""
    rest = f"regexp_extract(lower({resource_id}), '/providers/(.*)$', 1)"
    # provider/type/name[/childtype/childname...]: keep the provider and the types, drop the names
    parts = f"string_split({rest}, '/')"
    kinds = f"list_filter({parts}, lambda part, i: i = 1 OR i % 2 = 0)"
    arm = f"NULLIF(array_to_string({kinds}, '/'), '')"
    # an id without a provider segment is a resource group's or a subscription's
    scope = (f"CASE WHEN regexp_matches(lower({resource_id}), '^/subscriptions/[^/]+/resourcegroups/[^/]+/?$') "
             f"THEN 'microsoft.resources/resourcegroups' WHEN regexp_matches(lower({resource_id}), '^/subscriptions/[^/]+/?$') "
             f"THEN 'microsoft.resources/subscriptions' END")
    return f"coalesce({arm}, {scope})"


def resource_type_sql(resource_id: str) -> str:
    """ResourceType as Microsoft's FOCUS export writes it (display name), else the ARM type, in SQL."""
    arm_type = arm_type_sql(resource_id)
    return lookup_sql(arm_type, AZURE_RESOURCE_TYPES, arm_type)
