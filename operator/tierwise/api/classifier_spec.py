"""The RoutingPolicy's prompt classifiers: categories by example, and the learned tier
classifier that `tierwise route calibrate` makes.

Kept apart from :mod:`tierwise.api.routing_policy` (which re-exports these models) so the
policy module stays readable.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from tierwise.api.common import (
    LIST_MAP,
    DNSLabel,
    DNSSubdomain,
    Duration,
    FieldError,
    SpecModel,
    cel,
    validations,
)


class ClassifierCategory(SpecModel):
    """A category the classifier recognises, described by example prompts."""

    name: DNSLabel
    """Category name, used by rules' match.category."""
    examples: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=8192)]],
        Field(min_length=1, max_length=256),
    ]
    """Example prompts of this category."""


class ConfigMapKeySelector(SpecModel):
    """A key of a ConfigMap in the resource's own namespace."""

    name: DNSSubdomain
    """Name of the ConfigMap (same namespace as this resource)."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
    """Key inside the ConfigMap holding the file."""


class TierQualitySpec(SpecModel):
    """A learned tier classifier made by `tierwise route calibrate`: for each cheaper tier,
    the probability that it answers a prompt well. Rules read it with
    match.minPredictedQuality."""

    config_map: ConfigMapKeySelector | None = None
    """ConfigMap key holding the artefact (under 1 MiB); the router reads it where the
    ConfigMap is mounted: {classifier dir}/{name}/{key}."""
    path: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    """File holding the artefact, e.g. on a mounted volume; relative paths resolve against
    the router's classifier dir."""
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", max_length=64)] | None = None
    """SHA-256 of the artefact; another file is refused (calibrate writes it)."""
    timeout: Duration = "20ms"
    """Longest wait for a prompt's scores; after it the rules needing them do not match
    (the policy's default decision applies) and the miss is counted."""

    model_config = validations(
        cel(
            "has(self.configMap) != has(self.path)",
            "tierQuality needs exactly one of configMap or path; set one, remove the other",
        )
    )

    @model_validator(mode="after")
    def _one_source(self) -> TierQualitySpec:
        if (self.config_map is None) == (self.path is None):
            raise FieldError(
                "configMap",
                "tierQuality needs exactly one of configMap (name, key) or path; set one, "
                "remove the other",
            )
        return self


class ClassifierSpec(SpecModel):
    """Prompt classifiers run locally by the router (never fetched at run time): categories
    by embedding similarity to example prompts, and a learned tier classifier."""

    model: Annotated[str, Field(min_length=1, max_length=253)] = "all-MiniLM-L6-v2"
    """Embedding model; must be available offline in the router image."""
    categories: Annotated[
        list[ClassifierCategory], Field(max_length=32, json_schema_extra=LIST_MAP)
    ] = Field(default_factory=list)
    """Categories and their examples."""
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Least cosine similarity for a prompt to count as a category."""
    tier_quality: TierQualitySpec | None = None
    """Learned tier classifier feeding rules' match.minPredictedQuality."""

    model_config = validations(
        cel(
            "(has(self.categories) && size(self.categories) > 0) || has(self.tierQuality)",
            "a classifier needs categories or tierQuality; add one or remove spec.classifier",
        )
    )

    @model_validator(mode="after")
    def _something(self) -> ClassifierSpec:
        if not self.categories and self.tier_quality is None:
            raise FieldError(
                "categories",
                "a classifier needs categories or tierQuality; add one or remove "
                "spec.classifier",
            )
        return self
