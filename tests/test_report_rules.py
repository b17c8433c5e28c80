"""Every claim rule of `rules.CLAIMS` on constructed tables: a table that passes it and tables that fail it for
each reason the paper's sentence gives (a boundary optimum, a shrinking gap, 17 of 20 subgroups...)."""
import math

import pandas as pd
import pytest

from pruning_repro.report import claims, write_report
from pruning_repro.rules import CLAIMS, check


def t6(**over):
    "Table 6 at 0/5/15% noise in the paper's regime: every optimum beats dense, inside LeNet's range, gain grows."
    d = dict(noise=[0.0, 0.05, 0.15], dense_test_err_mean=[16.0, 18.5, 22.0], dense_test_err_std=[0.3, 0.4, 0.5],
             sparse_test_err_mean=[15.2, 17.4, 20.0], sparse_test_err_std=[0.2, 0.3, 0.4],
             diff_mean=[-0.8, -1.1, -2.0], diff_std=[0.3, 0.3, 0.4], verdict=["differ"] * 3,
             optimal_weights_remaining_mean=[51.2, 40.96, 13.4], optimal_weights_remaining_std=[0.0] * 3,
             optimal_level=[3, 4, 9], last_level=[12] * 3, paper_range_high=[80.0] * 3, paper_range_low=[1.4] * 3)
    d.update(over)
    return pd.DataFrame(d)


def f2(deltas, stds=None):
    n = len(deltas)
    return pd.DataFrame({"which": "optimal", "subgroup": range(n), "delta_mean": deltas,
                         "delta_std": stds if stds is not None else [0.01] * n})


def status(key, *tables): return check(key, *tables)["status"]


# C0: no noise, optimum beats dense, (almost) all subgroups match or improve, top 20% >= 3.5x bottom 80%
GOOD_F2 = [-0.001] * 16 + [-0.05] * 4          # top |0.05| vs bottom |0.001|: 50x


def test_c0_holds_and_fails_each_way():
    assert status("C0", t6(), f2(GOOD_F2)) == "holds"
    # dense not beaten at 0% (a match)
    assert status("C0", t6(diff_mean=[-0.2, -1.1, -2.0]), f2(GOOD_F2)) == "holds in part"
    # 17 of 20 subgroups match or improve: three are worse beyond their std
    bad = [0.05] * 3 + [-0.001] * 13 + [-0.05] * 4
    r = check("C0", t6(), f2(bad))
    assert r["status"] == "holds in part" and "17/20 subgroups (need 18)" in r["evidence"]
    # 18 of 20 is enough
    assert status("C0", t6(), f2([0.05] * 2 + [-0.001] * 14 + [-0.05] * 4)) == "holds"
    # not concentrated on the top 20%: ratio 2 < 3.5
    assert status("C0", t6(), f2([-0.01] * 16 + [-0.02] * 4)) == "holds in part"
    # the optimum is the dense model: Fig. 2 has no optimal rows
    assert status("C0", t6(), f2(GOOD_F2).assign(which="highest_better")) == "holds in part"


def test_c1_boundary_optimum_and_shrinking_gain():
    assert status("C1", t6()) == "holds"
    # the optimum at the last level trained (boundary): not the paper's regime
    r = check("C1", t6(optimal_level=[3, 4, 12], optimal_weights_remaining_mean=[51.2, 40.96, 6.87]))
    assert r["status"] == "holds in part" and "the last level" in r["evidence"]
    # an optimum outside LeNet's Table 4 range (below 1.4% weights), though interior
    assert status("C1", t6(optimal_weights_remaining_mean=[51.2, 40.96, 0.9], last_level=[30] * 3)) == "holds in part"
    # the dense model is optimal at 5%
    assert status("C1", t6(optimal_level=[3, 0, 9], optimal_weights_remaining_mean=[51.2, 100.0, 13.4])) == "holds in part"
    # the gain shrinks from 5% to 15%
    r = check("C1", t6(diff_mean=[-0.8, -2.0, -1.1]))
    assert r["status"] == "holds in part" and "gain grows 5% → 15%" in r["evidence"] and "✗" in r["evidence"]
    # no gain at 15%: a match
    assert status("C1", t6(diff_mean=[-0.8, -1.1, -0.2])) == "holds in part"


def test_margins_are_in_std_units_and_shown():
    r = check("C1", t6())
    # 5%: m = -1.1, s = 0.3 -> (1.1 - 0.3) / 0.3 = 2.67 std
    assert "(-1.10±0.30) [✓ margin +2.67 std]" in r["evidence"]
    assert r["margin"].endswith("std")


def t5(edt0, edt15, s=0.3):
    return pd.DataFrame({"noise": [0.0, 0.0, 0.15, 0.15], "algorithm": ["LR rewinding", "EDT"] * 2,
                         "optimal_test_err_mean": [15.0, 15.0 + edt0, 20.0, 20.0 + edt15],
                         "optimal_test_err_std": [0.2] * 4, "diff_mean": [0.0, edt0, 0.0, edt15],
                         "diff_std": [0.0, s, 0.0, s]})


def test_c2():
    assert status("C2", t5(0.1, 1.0)) == "holds"
    assert status("C2", t5(-1.0, 1.0)) == "holds"           # EDT better without noise: "matches or beats"
    assert status("C2", t5(0.5, 1.0)) == "holds in part"     # EDT worse without noise
    assert status("C2", t5(0.1, 0.2)) == "holds in part"     # EDT matches under noise: not worse


def t11(gap_diff, gap_std=0.2):
    return pd.DataFrame({"noise": [0.15] * 3, "partition": ["Noisy", "Original", "Gap"],
                         "dense_mean": [0.4, 0.05, 0.35], "dense_std": [0.05, 0.01, 0.05],
                         "sparse_mean": [0.4 + gap_diff, 0.05, 0.35 + gap_diff], "sparse_std": [0.2, 0.01, 0.2],
                         "diff_mean": [gap_diff, 0.0, gap_diff], "diff_std": [gap_std, 0.01, gap_std]})


def test_c3_gap_must_widen():
    assert status("C3", t11(2.0)) == "holds"
    assert status("C3", t11(-0.3)) == "does not hold"        # the gap shrinks: the optimum memorizes more
    assert status("C3", t11(0.1)) == "does not hold"         # widens within one std: a match
    assert status("C3", t11(2.0).query("partition != 'Gap'")) == "does not hold"


def tl(lo_lower, hi_higher, n=20):
    return pd.DataFrame({"algorithm": "pruning", "noise": [0.0, 0.0], "milestone": [0, 1], "step": [1, 10],
                         "weights_remaining": [80.0, 5.0], "mean_delta": [-0.01, 0.3], "n_subgroups": [n, n],
                         "n_lower": [lo_lower, 20 - hi_higher], "n_higher": [20 - lo_lower, hi_higher]})


def test_c4_almost_all_subgroups():
    assert status("C4", tl(18, 20)) == "holds"
    r = check("C4", tl(17, 20))
    assert r["status"] == "holds in part" and "17/20 subgroups (need 18)" in r["evidence"]
    assert status("C4", tl(20, 17)) == "holds in part"
    assert status("C4", tl(10, 10)) == "does not hold"


def t7(wd0, wd15, vs_dense=-1.5, s=0.3):
    return pd.DataFrame({"noise": [0.0, 0.0, 0.15, 0.15], "algorithm": ["LR rewinding", "WD"] * 2,
                         "optimal_test_err_mean": [15.0, 15.0 + wd0, 20.0, 20.0 + wd15],
                         "optimal_test_err_std": [0.2] * 4, "diff_mean": [0.0, wd0, 0.0, wd15],
                         "diff_std": [0.0, s, 0.0, s], "dense_test_err": [16.0, 16.0, 22.0, 22.0],
                         "dense_diff_mean": [-1.0, -1.0 + wd0, -2.0, vs_dense], "dense_diff_std": [0.3] * 4,
                         "paper_wd_gap_low": -4.0, "paper_wd_gap_high": 0.4})


def t3(j=0.25, s=0.02):
    return pd.DataFrame({"noise": [0.0, 0.15], "jaccard_mean": [j, j], "jaccard_std": [s, s], "chance": [0.0526] * 2})


def test_c5():
    assert status("C5", t7(0.5, 0.3), t3()) == "holds"
    assert status("C5", t7(-1.0, 0.3), t3()) == "holds in part"    # WD beats pruning without noise
    assert status("C5", t7(0.5, 1.5), t3()) == "holds in part"     # 1.5 > 0.4 + 0.3: outside LeNet's range
    assert status("C5", t7(0.5, -4.2), t3()) == "holds"            # -4.2 >= -4 - 0.3: inside, widened by the std
    assert status("C5", t7(0.5, 0.3, vs_dense=-0.1), t3()) == "holds in part"   # WD does not beat dense under noise
    assert status("C5", t7(0.5, 0.3), t3(j=0.06)) == "holds in part"            # Jaccard at chance


def t9(wr):
    return pd.DataFrame({"noise": [0.15, 0.15], "algorithm": ["LR rewinding", "weight rewinding"],
                         "optimal_test_err_mean": [20.0, 20.0 + wr], "optimal_test_err_std": [0.2, 0.2],
                         "diff_mean": [0.0, wr], "diff_std": [0.0, 0.3]})


def test_c6():
    assert status("C6", t9(-1.0)) == "holds"
    assert status("C6", t9(-0.2)) == "does not hold"


def fig09(diffs, improving):
    n = len(diffs)
    return pd.DataFrame({"noise": 0.0, "level": range(1, n + 1), "weights_remaining": [80 * 0.8 ** i for i in range(n)],
                         "diff_mean": diffs, "diff_std": [0.3] * n, "improving": improving})


def test_appd_average_over_the_improving_range():
    assert status("App. D", fig09([0.8, 0.7, -0.5], [True, True, False])) == "holds"
    assert status("App. D", fig09([0.8, 0.1, -0.5], [True, True, False])) == "holds"     # mean 0.45 >= 0.3
    assert status("App. D", fig09([0.2, 0.1, 2.0], [True, True, False])) == "does not hold"
    r = check("App. D", fig09([0.8, 0.7], [False, False]))                              # no improving level:
    assert r["status"] == "not tested" and "range to average over is empty" in r["evidence"]   # no range, no verdict


def test_c4_milestones_outside_the_papers_ranges_are_not_tested():
    "App. L's ranges (ResNet-20): low 80% to 26.21%, high 8.59% to 0.92% weights remaining."
    t = tl(20, 0).assign(weights_remaining=[80.0, 32.8])          # the trajectory stops at 32.8%: no high sparsity
    r = check("C4", t)
    assert r["status"] == "holds (1 of 2 cases not tested)" and "[not tested]" in r["evidence"]
    assert r["margin"] == "+2.00 subgroups"                        # the margin comes from the tested case only
    assert status("C4", t.assign(weights_remaining=[80.0, 8.59])) == "holds in part"   # 8.59% is high: 0/20 rose
    assert status("C4", t.assign(weights_remaining=[20.0, 5.0])) == "does not hold (1 of 2 cases not tested)"
    assert status("C4", t.assign(weights_remaining=[20.0, 10.0])) == "not tested"


def test_appe_appj2_fig1a():
    t8 = pd.DataFrame({"noise": [0.15], "DS_optimal_test_err_mean": [19.0], "DS_optimal_test_err_std": [0.2],
                       "LR_optimal_test_err_mean": [20.0], "LR_optimal_test_err_std": [0.2],
                       "diff_mean": [-1.0], "diff_std": [0.3]})
    assert status("App. E", t8) == "holds"
    assert status("App. E", t8.assign(diff_mean=0.5)) == "does not hold"
    t10 = t9(0.1).replace("weight rewinding", "random")
    assert status("App. J.2", t10) == "holds"
    assert status("App. J.2", t10.assign(diff_mean=[0.0, 0.5])) == "does not hold"
    f1 = pd.DataFrame({"level": [0, 1, 2, 3], "weights_remaining": [100.0, 80, 64, 0.5],
                       "augmented_test_err_mean": 15.0, "augmented_test_err_std": 0.2,
                       "pruning_test_err_mean": 15.0, "pruning_test_err_std": 0.2,
                       "diff_mean": [0.0, 0.1, -0.2, 3.0], "diff_std": [0.0, 0.3, 0.3, 0.3]})
    # the pruning side's sparsity decides the range when the table has it (the augmented models are all dense)
    f1b = f1.assign(weights_remaining=100.0, pruning_weights_remaining=[100.0, 80, 64, 0.5])
    assert status("Fig. 1a", f1b) == "holds"
    assert status("Fig. 1a", f1) == "holds"                   # the level at 0.5% weights is outside the range
    assert status("Fig. 1a", f1.assign(diff_mean=[0.0, 0.1, 0.9, 3.0])) == "holds in part"


def test_report_lists_every_claim_with_rule_quote_and_margin(tmp_path):
    t6().to_csv(tmp_path / "table06_dense_vs_optimal_test_error.csv", index=False)
    f2(GOOD_F2).to_csv(tmp_path / "fig02_subgroup_loss.csv", index=False)
    c = claims(tmp_path).set_index("claim")
    assert list(c.index) == list(CLAIMS)
    assert c.status["C0"] == "holds" and c.status["C1"] == "holds" and c.status["C2"] == "not run"
    md = write_report("demo", tmp_path).read_text()
    for key, claim in CLAIMS.items():
        assert f"### {key}: " in md and claim.rule_text in md and claim.quote[:40] in md
    assert "margin +" in md


def test_every_rule_quotes_the_paper():
    "Each quoted fragment (between ellipses) of each claim's words is in the paper's text, where the paper is at hand."
    from pathlib import Path
    paper = Path(__file__).resolve().parents[2] / "shared" / "paper" / "pruning_generalization.md"
    if not paper.exists(): pytest.skip("the paper's text is not in this checkout's shared folder")
    norm = lambda t: " ".join(t.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"').split())
    text = norm(paper.read_text().replace("*", ""))
    for key, c in CLAIMS.items():
        quoted = c.quote.split('"')[1::2]
        assert quoted, key
        for q in quoted:
            for frag in q.split("..."):
                frag = norm(frag).strip(" ,.")
                if len(frag) > 12: assert frag in text, (key, frag)
