from django import template

from tracking.carriers import carrier_name as _carrier_name

register = template.Library()


@register.filter
def carrier_name(code: str) -> str:
    """`{{ shipment.carrier|carrier_name }}`: the carrier's display name, or the code when unknown."""
    return _carrier_name(code)
