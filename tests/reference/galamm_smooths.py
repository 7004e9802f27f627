"""Copy galamm 0.3.0's smooth-model figures into tests/fixtures/galamm_smooths.json and the
data they were fitted to into tests/data/ (only the columns the models read).

Source: the reference fits under /work/shared/reference (galamm/<id>.json, data/derived/).
Run from the repository root: ``python tests/reference/galamm_smooths.py``. Each case gives
the model in semgalamm's syntax; galamm's call is in the source JSON's ``call``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

SOURCE = Path("/work/shared/reference")
TESTS = Path(__file__).resolve().parents[1]

COG1 = "loading =~ 1*item[11] + item[12] + item[13]; y ~ 0 + item; "
LC = ("loading =~ 1*type[measurement1] + type[measurement2] + type[response] + "
      "type[response]:x; ")
TWO = ("ability1 =~ 1*item[11] + item[12]; ability3 =~ 1*item[31] + item[32]; "
       "ability1 ~ s(x, k = 4) + (1 | id); ability3 ~ s(x, k = 4) + (1 | id); y ~ domain")
# id -> (model, family, categorical columns)
CASES: dict[str, tuple[str, str, list[str]]] = {
    "t_gamm4_s": ("y ~ s(x)", "gaussian", []),
    "t_gamm4_s_fx_ri": ("y ~ s(x, fx = TRUE) + (1 | id)", "gaussian", []),
    "t_gamm4_t2": ("y ~ t2(x)", "gaussian", []),
    "t_gamsim1_s_t2": ("y ~ s(x1) + t2(x2)", "gaussian", []),
    "t_gamsim4_s_by_num": ("y ~ s(x0, by = x2)", "gaussian", []),
    "t_gamsim4_t2_by_num": ("y ~ t2(x0, by = x2)", "gaussian", []),
    "t_gamsim1_binary_s": ("y ~ s(x0)", "binomial", []),
    "t_gamsim1_binary_s_by_num": ("y ~ s(x0, by = x2)", "binomial", []),
    "t_gamsim1_binary_t2_by_num": ("y ~ t2(x0, by = x2)", "binomial", []),
    "t_gamsim1_poisson_s": ("y ~ s(x2)", "poisson", []),
    "t_gamsim1_poisson_t2_by_num": ("y ~ t2(x2, by = x0)", "poisson", []),
    "v_semi_gamm_gaussian": ("y ~ s(x) + (1 | id)", "gaussian", []),
    "v_semi_gamm_binomial": ("y ~ s(x) + (1 | id)", "binomial", []),
    "v_lc_smooth_int": (LC + "loading ~ (1 | id); y ~ 0 + m1 + m2 + s(x, by = response)",
                        "gaussian", []),
    "t_lc_smooth_k4_int": (LC + "loading ~ (1 | id); y ~ 0 + m1 + m2 + s(x, k = 4, by = "
                           "response)", "gaussian", []),
    "t_lcl_smooth_int": (LC + "loading ~ (1 | id); y ~ s(x, by = response) + "
                         "(0 + response | id)", "gaussian", []),
    "t_gamm_factor_sl_tp1": (COG1 + "loading ~ s(x)", "gaussian", []),
    "t_gamm_factor_t2l_tp1": (COG1 + "loading ~ t2(x)", "gaussian", []),
    "t_gamm_factor_re_id50": (COG1 + "loading ~ s(x, k = 4) + (1 | id/timepoint)", "gaussian",
                              []),
    "v_semi_factor_gaussian": (COG1 + "loading ~ s(x) + (1 | id/timepoint)", "gaussian", []),
    "v_semi_factor_binomial": ("loading =~ 1*item[21] + item[22]; y ~ 0 + item; "
                               "loading ~ s(x) + (1 | id/timepoint)", "binomial", []),
    "x_gamm_byvar_loadings_converged": (TWO, "gaussian", ["domain"]),
    "t_gamm_byvar_loadings_maxit0": (TWO, "gaussian", ["domain"]),
}


def _columns(model: str, frame: pd.DataFrame) -> list[str]:
    words = set(model.replace("(", " ").replace(")", " ").replace("[", " ").replace(",", " ")
                .replace("~", " ").replace("+", " ").replace("=", " ").replace(":", " ")
                .replace("|", " ").replace("/", " ").replace(";", " ").split())
    return [c for c in frame.columns if c in words]


def main() -> None:
    out: dict[str, dict] = {}
    written: dict[str, str] = {}
    for case, (model, family, factors) in CASES.items():
        ref = json.loads((SOURCE / "galamm" / f"{case}.json").read_text())
        frame = pd.read_csv(SOURCE / ref["data_file"]).rename(columns={"y.1": "y"})
        frame = frame[_columns(model, frame)]
        text = frame.to_csv(index=False, float_format="%.17g")
        digest = hashlib.sha1(text.encode()).hexdigest()
        if digest not in written:
            written[digest] = f"galamm_{case}.csv"
            (TESTS / "data" / written[digest]).write_text(text)
        params = ref["parameters"]
        theta = [params["estimate"][i - 1] for i in params["theta_inds"]]
        lam = [params["estimate"][i - 1]
           for i in params["lambda_inds"] + params["lambda_interaction_inds"]]
        gam = ref["gam"]
        out[case] = {
            "model": model, "family": family, "data": written[digest], "factors": factors,
            "galamm_call": ref["call"].strip(),
            "logLik": ref["logLik"], "converged": ref["convergence"]["optim_convergence"] == 0,
            "fixef_names": ref["fixef"]["names"], "fixef": ref["fixef"]["estimate"],
            "theta": theta, "lambda": lam, "sigma": ref.get("sigma"),
            "varcorr": [[v["grp"], v["var1"], v["vcov"]] for v in ref["varcorr"]],
            "edf": gam["edf_per_smooth"]["estimate"],
            "smooths": [{"x": s["x"], "fit": s["fit"], "se": s["se"]}
                        for s in gam["smooth_predictions"]],
            "predict_link_first10": ref["predict_link_first10"],
            "seconds": ref["timing"]["elapsed_median"],
        }
        extra = ref.get("extra") or {}
        if "predict_newdata" in extra:
            out[case]["newdata"] = extra["newdata"]
            out[case]["predict_newdata"] = extra["predict_newdata"]
    path = TESTS / "fixtures" / "galamm_smooths.json"
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
