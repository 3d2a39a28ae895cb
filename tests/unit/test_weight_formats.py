"""Weight-only int4 and int8 products (models/weight_formats.py)."""

from __future__ import annotations

import pytest
import torch

from models.weight_formats import INT4_GROUP, PackedLinear, pack


def q4_1_weight(rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight on a GGUF Q4_1 grid (each block of 32: scale * level + minimum, levels 0..15,
    both ends used, as the quantizer leaves them), and its levels."""
    generator = torch.Generator().manual_seed(0)
    blocks = cols // INT4_GROUP
    scale = torch.rand(rows, blocks, 1, generator=generator) * 0.02 + 0.001
    minimum = -torch.rand(rows, blocks, 1, generator=generator) * 0.1
    levels = torch.randint(0, 16, (rows, blocks, INT4_GROUP), generator=generator).float()
    levels[..., 0], levels[..., 1] = 0, 15
    return (scale * levels + minimum).reshape(rows, cols), levels.reshape(rows, cols)


def test_int4_finds_a_q4_1_weights_levels_again_and_holds_it_exactly() -> None:
    weight, levels = q4_1_weight(64, 128)
    packed = pack(weight, "int4", torch.float32, keep_levels=True)
    assert torch.equal(packed.tensors["levels"].float(), levels)
    torch.testing.assert_close(packed.dequantized(), weight, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("format", ["int4", "int8"])
def test_packed_products_are_those_of_the_weight_they_hold(format: str, dtype: torch.dtype) -> None:
    weight, _ = q4_1_weight(96, 64)
    packed = pack(weight, format, dtype)  # type: ignore[arg-type]
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(1)).to(dtype)
    expected = x.float() @ packed.dequantized().t()
    tolerance = 2e-2 if dtype == torch.bfloat16 else 1e-4
    torch.testing.assert_close(packed(x).float(), expected, rtol=tolerance, atol=tolerance * expected.abs().max())
    # and the weight they hold is the original one, up to the format's step
    step = (weight.abs().amax(dim=1, keepdim=True) / 127) if format == "int8" else 1e-2
    assert ((packed.dequantized() - weight).abs() <= step).all()


def test_a_stored_linear_missing_a_tensor_is_refused() -> None:
    with pytest.raises(ValueError, match="scales_zeros"):
        PackedLinear.of("int4", {"packed": torch.zeros(2, 2, dtype=torch.uint8)})
