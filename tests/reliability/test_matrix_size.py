"""The matrix covers every group the reliability issue lists, with at least 120 classes in all,
and each row is a distinct class (unique ids across groups)."""

from __future__ import annotations

from . import (
    test_matrix_cli,
    test_matrix_config,
    test_matrix_files,
    test_matrix_hub,
    test_matrix_names,
    test_matrix_plugins,
    test_matrix_reducers,
    test_matrix_tensors,
    test_matrix_tokens,
)

GROUPS = {
    "names and revisions": test_matrix_names.ROWS,
    "plugins and cards": test_matrix_plugins.ROWS,
    "config overrides": test_matrix_config.ROWS,
    "files": test_matrix_files.ROWS,
    "hub faults": test_matrix_hub.ROWS,
    "tensors": test_matrix_tensors.ROWS,
    "token ids": test_matrix_tokens.ROWS,
    "CLI arguments and paths": test_matrix_cli.ROWS,
    "reducers": test_matrix_reducers.ROWS,
}


def test_every_group_is_covered_and_the_matrix_has_at_least_120_classes():
    counts = {group: len(rows) for group, rows in GROUPS.items()}
    print("\n".join(f"{group:<26} {n:>4}" for group, n in counts.items()) + f"\n{'total':<26} {sum(counts.values()):>4}")
    assert all(n >= 10 for n in counts.values()), counts
    assert sum(counts.values()) >= 120, counts
    ids = [row.id for rows in GROUPS.values() for row in rows]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    errors = [row for rows in GROUPS.values() for row in rows if row.raises is not None]
    assert len(errors) >= 0.7 * len(ids)  # mostly refusals; the rest are correct results
