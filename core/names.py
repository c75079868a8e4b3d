"""Names made from other names: a copy's, a template made from a batch."""

NAME_LENGTH = 200


def with_suffix(name: str, suffix: str, limit: int = NAME_LENGTH) -> str:
    """`name` followed by `suffix`, the name shortened (with an ellipsis) so the suffix always fits.

    Cutting the whole string at the limit would drop the suffix from a long
    name, and a copy would then be named exactly as its original.
    """
    whole = f"{name} {suffix}"
    if len(whole) <= limit:
        return whole
    room = limit - len(suffix) - 2  # the ellipsis and the space
    return f"{name[:room].rstrip()}… {suffix}"
