from django import template

from tracking.carriers import carrier_name as _carrier_name
from tracking.choices import subtag_label as _subtag_label

register = template.Library()


@register.filter
def carrier_name(code: str) -> str:
    """`{{ shipment.carrier|carrier_name }}`: the carrier's display name, or the code when unknown."""
    return _carrier_name(code)


@register.filter
def subtag_label(code: str) -> str:
    """`{{ event.subtag|subtag_label }}`: what the status code means, in the reader's language."""
    return _subtag_label(code)
