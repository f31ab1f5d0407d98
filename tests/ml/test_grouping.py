import numpy as np
import pytest

from ml.grouping import positions, rank_in_runs, run_counts


@pytest.mark.parametrize("ids", [[3, 7, 8, 20], [3, 7, 8, 10**15]])  # dense table, search
def test_positions_find_present_ids_and_missing_ones_fail_the_callers_check(ids):
    ids = np.array(ids, dtype=np.int64)
    values = np.array([8, 3, 20 if ids[-1] == 20 else 10**15, 5, 0, 10**16])
    at = positions(ids, values)
    assert at[:3].tolist() == [2, 0, 3]
    assert (ids[at[3:]] != values[3:]).all()


def test_runs_count_and_rank_equal_neighbours():
    values = np.array([1, 1, 4, 4, 4, 9])
    distinct, counts = run_counts(values)
    assert distinct.tolist() == [1, 4, 9] and counts.tolist() == [2, 3, 1]
    assert rank_in_runs(values).tolist() == [0, 1, 0, 1, 2, 0]
