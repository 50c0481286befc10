//! Rerunning one trial from its replay line, as a library call: what
//! `crashlab replay` does, for callers that hold the line as text (the
//! regressions file, tests).

use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::crash::PointSelection;
use crate::expectation::{expected_acks, PersistenceModel};
use crate::lab::pool::{run_batches, Batch, PoolConfig};
use crate::page_size::page_size;
use crate::payload::BaseImage;
use crate::report::survival::{CellReport, MatrixConfig, ReplayLine};
use crate::report::survival_cells::{aggregate_cell, CellInput};
use crate::trial_record::TrialRecord;
use crate::LabError;

/// `--tear` when a line does not say: the default of `crashlab replay`.
use crate::power_loss::DEFAULT_TEAR;

impl FromStr for ReplayLine {
    type Err = String;

    /// Parse the text [`ReplayLine`]'s `Display` writes:
    /// `crashlab replay --scenario S --crash K --point P --seed N --size B --txns T
    /// [--model M] [--tear B] [--state X]`, flags in any order.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_whitespace();
        if (words.next(), words.next()) != (Some("crashlab"), Some("replay")) {
            return Err("a replay line starts with `crashlab replay`".into());
        }
        let mut flags: Vec<(&str, &str)> = Vec::new();
        while let Some(flag) = words.next() {
            const KNOWN: [&str; 9] =
                ["--scenario", "--crash", "--point", "--seed", "--size", "--txns", "--model", "--tear", "--state"];
            if !KNOWN.contains(&flag) {
                return Err(format!("unknown flag `{flag}` (expected one of {})", KNOWN.join(", ")));
            }
            let value = words.next().ok_or_else(|| format!("{flag} has no value"))?;
            if flags.iter().any(|(f, _)| *f == flag) {
                return Err(format!("{flag} given twice"));
            }
            flags.push((flag, value));
        }
        let get = |flag: &str| flags.iter().find(|(f, _)| *f == flag).map(|(_, v)| *v);
        let required = |flag: &str| get(flag).ok_or_else(|| format!("{flag} is missing"));
        fn parse<T: FromStr>(flag: &str, v: &str) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e| format!("{flag} `{v}`: {e}"))
        }
        Ok(ReplayLine {
            scenario: parse("--scenario", required("--scenario")?)?,
            crash: parse("--crash", required("--crash")?)?,
            point: parse("--point", required("--point")?)?,
            seed: parse("--seed", required("--seed")?)?,
            file_size: parse("--size", required("--size")?)?,
            txns: parse("--txns", required("--txns")?)?,
            model: get("--model").map_or(Ok(PersistenceModel::ProcessCrash), |v| parse("--model", v))?,
            tear: get("--tear").map_or(Ok(DEFAULT_TEAR), |v| parse("--tear", v))?,
            state: get("--state").map(str::to_owned),
        })
    }
}

/// One rerun trial: its record, and the one-trial cell judged from it
/// (whose verdict is the trial's).
pub struct ReplayOutcome {
    pub record: TrialRecord,
    pub cell: CellReport,
}

/// Rerun the trial of `line` on `pool`'s workers and judge it. A `--state`
/// in the line only selects a state to inspect; the verdict is the trial's.
pub fn replay_trial(line: &ReplayLine, pool: &PoolConfig) -> Result<ReplayOutcome, LabError> {
    if line.model.is_real() {
        return Err(LabError::Spec(
            "--model power-loss-real: a real power cut is rerun by the `crashlab soundness ... --point P \
             --trials 1` line its cell prints, not by replay"
                .into(),
        ));
    }
    let config = MatrixConfig {
        seed: line.seed,
        file_size: line.file_size,
        txns: line.txns,
        points: PointSelection::All,
        trials: 1,
        scenarios: vec![line.scenario],
        crashes: vec![line.crash],
        models: vec![line.model],
        tear: line.tear,
        shard: None,
        real: Vec::new(),
        real_sample: None,
    };
    let spec = config.spec(line.scenario)?;
    line.point.fits(line.crash, &spec).map_err(|e| LabError::Spec(format!("--point: {e}")))?;
    if let Some(cfg) = config.power_loss_config(line.model) {
        cfg.validate(page_size()).map_err(|e| LabError::Spec(format!("--tear {}: {e}", line.tear)))?;
    }
    let plan = config.trial_plan(line.scenario, line.crash, line.model, line.point);
    let batch = Batch { key: 0, spec: Arc::new(spec), base: BaseImage::for_crash(line.crash), plans: vec![plan] };
    let mut records = run_batches(pool, &[batch], &AtomicBool::new(false), &|_| {})?;
    let records = records.pop().expect("one batch, one result");
    let replay = |p| config.replay_line(line.scenario, line.crash, line.model, p);
    let cell = aggregate_cell(&CellInput {
        scenario: line.scenario,
        crash: line.crash,
        model: line.model,
        expectation: expected_acks(line.scenario.mapping, line.scenario.policy, line.crash, line.model),
        points: &[line.point],
        records: &records,
        replay: &replay,
    });
    let record = records.into_iter().next().expect("one plan, one record");
    Ok(ReplayOutcome { record, cell })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::CrashPoint;
    use crate::vocab::CrashKind;

    fn line(model: PersistenceModel, state: Option<&str>) -> ReplayLine {
        ReplayLine {
            scenario: "shared/ms-sync-every-4".parse().unwrap(),
            crash: CrashKind::Sigkill,
            point: CrashPoint::InsideStore { op: 3, delay_ns: 120 },
            seed: 77,
            file_size: 65536,
            txns: 8,
            model,
            tear: 1024,
            state: state.map(str::to_owned),
        }
    }

    #[test]
    fn printed_lines_parse_back_to_themselves() {
        for l in [
            line(PersistenceModel::ProcessCrash, None),
            line(PersistenceModel::PowerLoss, None),
            line(PersistenceModel::PowerLossTorn, Some("p3=v2")),
        ] {
            let text = l.to_string();
            let back: ReplayLine = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            // `--tear` is printed for the torn model only; elsewhere it is the default.
            let expected_tear = if l.model == PersistenceModel::PowerLossTorn { l.tear } else { DEFAULT_TEAR };
            assert_eq!(back, ReplayLine { tear: expected_tear, ..l }, "{text}");
        }
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let ok = line(PersistenceModel::ProcessCrash, None).to_string();
        let cases = [
            (ok.replace("crashlab replay", "crashlab run"), "crashlab replay"),
            (ok.replace("--seed 77", ""), "--seed is missing"),
            (ok.replace("--seed 77", "--seed x"), "--seed `x`"),
            (ok.replace("--point inside:3+120ns", "--point inside:3"), "--point"),
            (format!("{ok} --jobs 2"), "--jobs"),
            (format!("{ok} --txns 3"), "twice"),
            (format!("{ok} --model"), "no value"),
            (format!("{ok} --model meteor"), "meteor"),
        ];
        for (text, needle) in cases {
            let e = text.parse::<ReplayLine>().unwrap_err();
            assert!(e.contains(needle), "`{text}`: `{e}` should mention `{needle}`");
        }
    }
}
