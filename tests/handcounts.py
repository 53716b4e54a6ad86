"""FLOP counts worked out by hand, shared by tests that check different builders of one model."""


def block_matrix_flops(t: int, d: int, h: int, f: int) -> int:
    """Matrix FLOPs of one transformer block over ``t`` tokens (hidden ``d``, ``h`` heads, MLP ``f``)."""
    dh = d // h
    return (2 * t * 3 * d * d          # fused QKV
            + 2 * h * t * t * dh * 2   # scores and P V
            + 2 * t * d * d            # output projection
            + 2 * t * f * d * 2)       # fc1 and fc2
