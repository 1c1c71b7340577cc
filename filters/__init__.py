"""Body transforms: which responses are rewritten, and how."""

from filters.pipeline import BodyRewriter, SitePlan, build_plans
from filters.rules import RuleError, SubsFilterRules

__all__ = [
    "BodyRewriter",
    "RuleError",
    "SitePlan",
    "SubsFilterRules",
    "build_plans",
]
