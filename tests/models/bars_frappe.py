"""BARS's Frappe_x1 vocabularies (the feature specs in its FuxiCTR logs: padding and OOV
included), so a model at BARS's setting can be held to the parameter count BARS logged."""

from tf4ctr.data.encoded import FeatureSchema, FieldInfo

FRAPPE_BARS_VOCAB = dict(
    user=956, item=4084, daytime=9, weekday=9, isweekend=4,
    homework=5, cost=4, weather=11, country=82, city=235,
)  # fmt: skip


def named_schema(vocab: dict[str, int]) -> FeatureSchema:
    return FeatureSchema(tuple(FieldInfo(n, "categorical", v) for n, v in vocab.items()))
