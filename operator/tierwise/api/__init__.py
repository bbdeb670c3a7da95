"""The typed custom resources: the single source of truth for CRDs, operator and router."""

from tierwise.api.common import API_VERSION, GROUP, VERSION, Condition, Price, SecretKeySelector
from tierwise.api.model_deployment import (
    EngineName,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Phase,
)
from tierwise.api.routing_policy import (
    BalancingPolicy,
    FallbackAction,
    RoutingPolicy,
    RoutingPolicySpec,
    RoutingPolicyStatus,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "BalancingPolicy",
    "Condition",
    "EngineName",
    "FallbackAction",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "Phase",
    "Price",
    "RoutingPolicy",
    "RoutingPolicySpec",
    "RoutingPolicyStatus",
    "SecretKeySelector",
]
