//! Which accelerator the vm backend's qemu uses: KVM when it works here,
//! else TCG (software emulation).
//!
//! "Works" is decided by experiment, not by the presence of `/dev/kvm`: on
//! the nested VMs this project runs on, `/dev/kvm` opens, qemu starts with
//! `accel=kvm`, and the guest never prints a byte (measured: nothing on the
//! serial console in 30 s, where TCG boots to the writer in ~2.5 s). So
//! `auto` boots one probe guest under KVM and takes KVM only if that guest's
//! writer reports ready within [`KVM_PROBE_TIMEOUT`]; otherwise TCG, with
//! the reason in the report (`environment.accelerator`).
//!
//! The accelerator changes how fast the guest runs, not what it does: the
//! same kernel, disk and cut. It is recorded, never part of a verdict.
//!
//! Architecture Invariant: [`decide`] is pure; the device check and the
//! probe boot are passed in.

use std::fmt;
use std::time::Duration;

use super::RealcutError;

/// A probe guest that has not reached its writer by then is taken as "KVM
/// does not work here": TCG boots to the writer in ~2.5 s on this project's
/// machines, so a KVM guest slower than this would not be worth having.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The accelerator qemu runs the guest with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation: works everywhere, one host core per guest.
    #[default]
    Tcg,
    /// Hardware virtualization through `/dev/kvm`.
    Kvm,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }

    /// qemu's `-machine` value and the `-cpu` it goes with (KVM passes the
    /// host's CPU through; TCG emulates qemu's default model).
    pub fn qemu_args(self) -> [&'static str; 4] {
        match self {
            Accel::Tcg => ["-machine", "pc,accel=tcg", "-cpu", "qemu64"],
            Accel::Kvm => ["-machine", "pc,accel=kvm", "-cpu", "host"],
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user asked for (`--accel`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM if a probe guest boots under it, else TCG.
    #[default]
    Auto,
    Tcg,
    /// KVM or an error (exit 2) saying why not.
    Kvm,
}

impl AccelChoice {
    pub const NAMES: &'static str = "auto, kvm, tcg";
}

impl fmt::Display for AccelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccelChoice::Auto => "auto",
            AccelChoice::Tcg => "tcg",
            AccelChoice::Kvm => "kvm",
        })
    }
}

impl std::str::FromStr for AccelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(AccelChoice::Auto),
            "tcg" => Ok(AccelChoice::Tcg),
            "kvm" => Ok(AccelChoice::Kvm),
            other => Err(format!("unknown accelerator `{other}`; expected one of {}", Self::NAMES)),
        }
    }
}

/// The accelerator chosen, and why, in words (the report's
/// `environment.accelerator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelDecision {
    pub accel: Accel,
    pub why: String,
}

impl AccelDecision {
    /// `kvm (…)` / `tcg (…)`: the accelerator first, so a reader (or a
    /// test) can tell which at a glance.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.accel, self.why)
    }
}

/// Decide from the choice, whether `/dev/kvm` can be opened (`device`), and
/// a probe boot under KVM (`probe`, run only when needed: the time the
/// probe guest took to reach its writer, or why it did not).
pub fn decide(
    choice: AccelChoice,
    device: Result<(), String>,
    probe: impl FnOnce() -> Result<Duration, String>,
) -> Result<AccelDecision, RealcutError> {
    let tcg = |why: String| Ok(AccelDecision { accel: Accel::Tcg, why });
    match choice {
        AccelChoice::Tcg => tcg("asked for with --accel tcg".into()),
        AccelChoice::Auto | AccelChoice::Kvm => {
            let failed = match device {
                Err(e) => format!("/dev/kvm cannot be used: {e}"),
                Ok(()) => match probe() {
                    Ok(t) => {
                        return Ok(AccelDecision {
                            accel: Accel::Kvm,
                            why: format!("a probe guest reached its writer under KVM in {:.1} s", t.as_secs_f64()),
                        })
                    }
                    Err(e) => format!("a probe guest under KVM failed: {e}"),
                },
            };
            match choice {
                AccelChoice::Kvm => Err(RealcutError::Unavailable(format!("--accel kvm: {failed}"))),
                _ => tcg(format!("KVM not used: {failed}")),
            }
        }
    }
}

/// Can `/dev/kvm` be opened for reading and writing (what qemu needs)?
pub fn kvm_device() -> Result<(), String> {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").map(drop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_kvm_only_when_the_probe_guest_boots() {
        let ok = || Ok(Duration::from_millis(800));
        let d = decide(AccelChoice::Auto, Ok(()), ok).unwrap();
        assert_eq!(d.accel, Accel::Kvm);
        assert!(d.describe().starts_with("kvm (") && d.why.contains("0.8 s"), "{}", d.describe());

        let hung = || Err("no sign of life in 10 s".to_string());
        let d = decide(AccelChoice::Auto, Ok(()), hung).unwrap();
        assert_eq!(d.accel, Accel::Tcg);
        assert!(d.describe().starts_with("tcg (KVM not used: a probe guest") && d.why.contains("10 s"), "{d:?}");

        let d = decide(AccelChoice::Auto, Err("No such file or directory".into()), || -> Result<Duration, String> {
            panic!("no probe without a device")
        })
        .unwrap();
        assert_eq!(d.accel, Accel::Tcg);
        assert!(d.why.contains("/dev/kvm") && d.why.contains("No such file"), "{d:?}");
    }

    #[test]
    fn tcg_never_probes_and_kvm_fails_with_the_reason() {
        let d =
            decide(AccelChoice::Tcg, Ok(()), || -> Result<Duration, String> { panic!("no probe for tcg") }).unwrap();
        assert_eq!(d.accel, Accel::Tcg);
        let e = decide(AccelChoice::Kvm, Ok(()), || Err("hung".to_string())).unwrap_err();
        assert!(e.is_unavailable() && e.to_string().contains("--accel kvm") && e.to_string().contains("hung"), "{e}");
        let d = decide(AccelChoice::Kvm, Ok(()), || Ok(Duration::from_secs(1))).unwrap();
        assert_eq!(d.accel, Accel::Kvm);
    }

    #[test]
    fn choices_parse_and_accelerators_give_qemu_its_arguments() {
        for c in [AccelChoice::Auto, AccelChoice::Tcg, AccelChoice::Kvm] {
            assert_eq!(c.to_string().parse::<AccelChoice>().unwrap(), c);
        }
        assert!("hvf".parse::<AccelChoice>().unwrap_err().contains("auto, kvm, tcg"));
        assert_eq!(Accel::Kvm.qemu_args()[1], "pc,accel=kvm");
        assert_eq!(Accel::Tcg.qemu_args()[1], "pc,accel=tcg");
    }
}
