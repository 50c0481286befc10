//! Walking the states of a power-loss model.
//!
//! Small spaces are enumerated completely in reflected mixed-radix Gray-code
//! order, so consecutive states differ in one unit by one version: the
//! explorer keeps a single working copy of the file and rewrites one unit per
//! state, and the ack tracker updates only the acks that unit touches. Large
//! spaces are sampled: the adversarial states a real writeback order is most
//! likely to produce (nothing written back, everything written back, one unit
//! alone either way, prefixes and suffixes in write order), every state an
//! explanation points at, and random states from the seed. No state ever
//! gets a file of its own.
//!
//! The order, the families and the sampler are the exploration kernel's
//! ([`crate::explore`]); this file binds them to the model's sizes and
//! walks the states copy-on-write.

use crate::explore::families::{write_order_families, Sample, SampleSpace};
use crate::explore::gray::MixedRadixGray;
use crate::explore::random::{chained_seeds, SeenStates};

use super::judge::AckTracker;
use super::space::{ChoiceVector, PowerLossModel};
use super::PowerLossConfig;

/// One planned state: a member of an adversarial family or a random one,
/// or a state an explanation points at.
#[derive(Debug, Clone)]
enum Planned {
    Family(Sample),
    Given(ChoiceVector),
}

/// The units of one file size as the kernel's samples see them: the
/// dimensions below the size, in write order for prefixes and suffixes.
struct SizeUnits<'p, 'm, 'a> {
    model: &'m PowerLossModel<'a>,
    within: usize,
    write_order: &'p [usize],
}

impl SampleSpace for SizeUnits<'_, '_, '_> {
    fn units(&self) -> usize {
        self.within
    }
    fn radix(&self, unit: usize) -> u32 {
        self.model.radix(unit)
    }
    fn in_order(&self, k: usize) -> usize {
        self.write_order[k]
    }
    fn newest_in_flight(&self, unit: usize) -> bool {
        self.model.dim_unit(unit).allowed().last().is_some_and(|v| v.in_flight)
    }
}

/// Which states a walk visits: all of them, or a deterministic sample.
#[derive(Debug, Clone)]
pub struct ExplorationPlan {
    exhaustive: bool,
    samples: Vec<(usize, Planned)>,
    /// Per size: dimensions ordered by when their newest version was written.
    write_orders: Vec<Vec<usize>>,
}

impl ExplorationPlan {
    /// Exhaustive when the model has at most `cfg.exhaustive_bound` states;
    /// otherwise the adversarial states of every size, `must_include`, and
    /// `cfg.samples` random states drawn from `seed`.
    pub fn new(
        model: &PowerLossModel<'_>,
        cfg: &PowerLossConfig,
        seed: u64,
        must_include: &[ChoiceVector],
    ) -> ExplorationPlan {
        let exhaustive = model.state_count().is_some_and(|n| n <= cfg.exhaustive_bound);
        if exhaustive {
            return ExplorationPlan { exhaustive, samples: Vec::new(), write_orders: Vec::new() };
        }
        let sizes = model.sizes().len();
        let mut samples = Vec::new();
        let mut write_orders = Vec::with_capacity(sizes);
        for z in 0..sizes {
            let within = model.dims_within(z);
            let mut order: Vec<usize> = (0..within).collect();
            order.sort_by_key(|&i| (model.dim_unit(i).allowed().last().map_or(0, |v| v.event), i));
            let units = SizeUnits { model, within, write_order: &order };
            samples.extend(write_order_families(&units).into_iter().map(|s| (z, Planned::Family(s))));
            write_orders.push(order);
        }
        samples.extend(must_include.iter().map(|c| (c.size, Planned::Given(c.clone()))));
        let random = chained_seeds(seed, cfg.samples, sizes);
        samples.extend(random.into_iter().map(|(z, s)| (z, Planned::Family(Sample::Random(s)))));
        // One size after the other: changing size re-enters the judge's tables.
        samples.sort_by_key(|(z, _)| *z);
        ExplorationPlan { exhaustive, samples, write_orders }
    }

    pub fn is_exhaustive(&self) -> bool {
        self.exhaustive
    }

    /// Every sampled state in walk order, each distinct state once
    /// (canonical: dimensions beyond the size at 0). Nothing for an
    /// exhaustive plan.
    pub fn for_each_sample(&self, model: &PowerLossModel<'_>, mut f: impl FnMut(&ChoiceVector)) {
        let mut seen = SeenStates::default();
        let mut c = ChoiceVector::default();
        for (z, planned) in &self.samples {
            self.fill(model, *z, planned, &mut c);
            model.canonicalize(&mut c);
            if seen.first_time(c.size, &c.versions) {
                f(&c);
            }
        }
    }

    fn fill(&self, model: &PowerLossModel<'_>, z: usize, planned: &Planned, c: &mut ChoiceVector) {
        c.size = z;
        c.versions.clear();
        c.versions.resize(model.dims(), 0);
        match planned {
            Planned::Given(g) => c.clone_from(g),
            Planned::Family(sample) => {
                let units = SizeUnits { model, within: model.dims_within(z), write_order: &self.write_orders[z] };
                sample.fill(&units, &mut c.versions);
            }
        }
    }
}

/// One state during a walk.
pub struct VisitedState<'v> {
    /// 0-based position in the walk.
    pub number: u64,
    pub choice: &'v ChoiceVector,
    /// The file size in this state.
    pub len: u64,
    /// The file's bytes (`len` of them), when the walk materializes.
    pub bytes: Option<&'v [u8]>,
}

/// The walker's one working state: a choice vector and, when materializing,
/// the one buffer holding its bytes.
struct Cursor<'m, 'a> {
    model: &'m PowerLossModel<'a>,
    choice: ChoiceVector,
    file: Option<Vec<u8>>,
    visited: u64,
    entered: bool,
}

impl<'m, 'a> Cursor<'m, 'a> {
    fn new(model: &'m PowerLossModel<'a>, materialize: bool) -> Self {
        Cursor {
            model,
            choice: model.floor_choice(0),
            file: materialize.then(|| model.floor_image()),
            visited: 0,
            entered: false,
        }
    }

    /// Rewrite only the unit that changes.
    #[inline]
    fn step(&mut self, d: usize, v: u32, tracker: Option<&mut AckTracker<'_>>) {
        let from = self.choice.versions[d];
        if from == v {
            return;
        }
        if let Some(f) = &mut self.file {
            self.model.write_dim(d, v, f);
        }
        if let Some(t) = tracker {
            t.change(d, from, v, self.visited);
        }
        self.choice.versions[d] = v;
    }

    fn jump(&mut self, target: &ChoiceVector, mut tracker: Option<&mut AckTracker<'_>>) {
        if self.entered && target.size == self.choice.size {
            for d in 0..target.versions.len() {
                self.step(d, target.versions[d], tracker.as_deref_mut());
            }
            return;
        }
        for d in 0..target.versions.len() {
            self.step(d, target.versions[d], None);
        }
        self.choice.size = target.size;
        if let Some(t) = tracker {
            t.enter_phase(target.size, &self.choice.versions, self.visited);
        }
        self.entered = true;
    }

    #[inline]
    fn visit(&mut self, f: &mut impl FnMut(&VisitedState<'_>)) {
        let len = self.model.sizes()[self.choice.size];
        f(&VisitedState {
            number: self.visited,
            choice: &self.choice,
            len,
            bytes: self.file.as_deref().map(|b| &b[..len as usize]),
        });
        self.visited += 1;
    }
}

/// Walk the states `plan` names, feeding `tracker` (if any) and calling
/// `visit` on each; with `materialize`, each state's bytes are built
/// copy-on-write in one buffer. Returns the number of states visited.
pub fn explore(
    model: &PowerLossModel<'_>,
    plan: &ExplorationPlan,
    materialize: bool,
    mut tracker: Option<&mut AckTracker<'_>>,
    mut visit: impl FnMut(&VisitedState<'_>),
) -> u64 {
    let mut cur = Cursor::new(model, materialize);
    if plan.exhaustive {
        for z in 0..model.sizes().len() {
            cur.jump(&model.floor_choice(z), tracker.as_deref_mut());
            cur.visit(&mut visit);
            let mut gray = MixedRadixGray::new((0..model.dims_within(z)).map(|d| model.radix(d)).collect());
            while let Some((d, v)) = gray.advance() {
                cur.step(d, v, tracker.as_deref_mut());
                cur.visit(&mut visit);
            }
        }
    } else {
        plan.for_each_sample(model, |c| {
            cur.jump(c, tracker.as_deref_mut());
            cur.visit(&mut visit);
        });
    }
    if let Some(t) = tracker {
        t.finish(cur.visited);
    }
    cur.visited
}
