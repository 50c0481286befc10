//! The vm bench: trials/min next to a bare boot-and-kill of the same guest.

use std::time::{Duration, Instant};

use super::guest::VmGuest;
use crate::payload::Payloads;
use crate::realcut::sys::copy_sparse;
use crate::realcut::RealcutError;
use crate::spec::WriterSpec;

/// vm trials/min next to a bare boot-and-kill of the same guest.
#[derive(Debug, Clone)]
pub struct VmBench {
    pub boot_and_kill_per_min: f64,
    pub trials_per_min: f64,
}

pub fn bench_vm(guest: &VmGuest, spec: &WriterSpec, trials: u32) -> Result<VmBench, RealcutError> {
    let payloads = Payloads::build(spec);
    let v = guest.prepare(999, spec, &payloads)?;
    let disk = guest.work.join("bench.img");
    let n = spec.ops.len();
    let (mut bare, mut full) = (Duration::ZERO, Duration::ZERO);
    for i in 0..trials as usize {
        copy_sparse(&v.pristine, &disk)?;
        let t = Instant::now();
        guest.boot_and_kill(&v.initramfs, &disk, None)?;
        bare += t.elapsed();
        let t = Instant::now();
        let rec = guest.trial(&v, spec, &payloads, (i * 7 + 3) % (n + 1), &disk)?;
        full += t.elapsed();
        if let Some(f) = rec.judgement.forbidden {
            return Err(RealcutError::Spec(format!("bench trial: model soundness violation: {f}")));
        }
    }
    let per_min = |d: Duration| trials as f64 / d.as_secs_f64() * 60.0;
    Ok(VmBench { boot_and_kill_per_min: per_min(bare), trials_per_min: per_min(full) })
}
