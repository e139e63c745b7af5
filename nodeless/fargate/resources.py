"""lightkube resource classes for nodeless's custom resources (cluster-scoped)."""

from __future__ import annotations

from lightkube.generic_resource import create_global_resource

from nodeless.fargate.names import GROUP, VERSION

FargateProfile = create_global_resource(GROUP, VERSION, "FargateProfile", "fargateprofiles")
Subnet = create_global_resource(GROUP, VERSION, "Subnet", "subnets")
FargateHost = create_global_resource(GROUP, VERSION, "FargateHost", "fargatehosts")
