"""Body transforms: which responses are rewritten, and how."""

from filters.pipeline import BodyRewriter, is_text_type
from filters.rules import RuleError, SubsFilterRules

__all__ = ["BodyRewriter", "RuleError", "SubsFilterRules", "is_text_type"]
