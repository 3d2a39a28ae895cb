"""The KV cache layer: rows join and leave, tokens are appended past the spare room, and the
visible keys and values always equal a plain concatenation of what each row wrote."""

from __future__ import annotations

import torch

from models.kv_cache import HEADROOM, HeadroomLayer


def kv(rows: int, length: int, seed: int) -> torch.Tensor:
    return torch.randn(rows, 2, length, 4, generator=torch.Generator().manual_seed(seed))


def test_rows_leaving_in_order_are_compacted_in_place_and_match_a_plain_copy() -> None:
    keys, values = kv(5, 6, 0), kv(5, 6, 1)
    layer = HeadroomLayer(keys, values)
    buffer = layer._keys.untyped_storage().data_ptr()
    layer.keep_rows(torch.tensor([0, 2, 4]), start=2)
    assert layer._keys.untyped_storage().data_ptr() == buffer  # no new memory for leaving rows
    assert torch.equal(layer.keys, keys[[0, 2, 4], :, 2:]) and torch.equal(layer.values, values[[0, 2, 4], :, 2:])
    step_k, step_v = kv(3, 1, 2), kv(3, 1, 3)
    out_k, out_v = layer.update(step_k, step_v)
    assert torch.equal(out_k, torch.cat([keys[[0, 2, 4], :, 2:], step_k], dim=2))
    assert torch.equal(out_v, torch.cat([values[[0, 2, 4], :, 2:], step_v], dim=2))


def test_reordered_or_repeated_rows_and_joins_and_growth_keep_every_row_intact() -> None:
    keys, values = kv(3, 4, 4), kv(3, 4, 5)
    layer = HeadroomLayer(keys, values)
    layer.keep_rows(torch.tensor([2, 0, 0]), start=0)  # beams copy a row to their children
    expect_k, expect_v = keys[[2, 0, 0]], values[[2, 0, 0]]
    joining_k, joining_v = kv(2, 7, 6), kv(2, 7, 7)
    layer.add_rows(joining_k, joining_v)
    pad = torch.zeros(3, 2, 3, 4)
    expect_k = torch.cat([torch.cat([pad, expect_k], dim=2), joining_k])
    expect_v = torch.cat([torch.cat([pad, expect_v], dim=2), joining_v])
    for step in range(HEADROOM + 3):  # past the spare room: the buffers grow
        k, v = kv(5, 1, 100 + step), kv(5, 1, 200 + step)
        layer.update(k, v)
        expect_k, expect_v = torch.cat([expect_k, k], dim=2), torch.cat([expect_v, v], dim=2)
    assert torch.equal(layer.keys, expect_k) and torch.equal(layer.values, expect_v)


def test_rows_joining_after_others_left_move_into_their_room_left_padded() -> None:
    keys, values = kv(4, 6, 8), kv(4, 6, 9)
    layer = HeadroomLayer(keys, values)
    layer.update(kv(4, 1, 10), kv(4, 1, 11))  # the spare room now holds data of every row
    layer.keep_rows(torch.tensor([1, 3]), start=0)
    kept_k, kept_v = layer.keys.clone(), layer.values.clone()
    buffer = layer._keys.untyped_storage().data_ptr()
    joining_k, joining_v = kv(2, 3, 12), kv(2, 3, 13)
    layer.add_rows(joining_k, joining_v)
    assert layer._keys.untyped_storage().data_ptr() == buffer  # no copy of the cache
    pad = torch.zeros(2, 2, 4, 4)
    assert torch.equal(layer.keys, torch.cat([kept_k, torch.cat([pad, joining_k], dim=2)]))
    assert torch.equal(layer.values, torch.cat([kept_v, torch.cat([pad, joining_v], dim=2)]))
