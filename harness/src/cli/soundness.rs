//! `crashlab soundness`: real power cuts checked against the simulated
//! power-loss model (page writers) and the posix namespace model
//! (`--workloads namespace`). Exit 0: every real post-cut file and
//! directory was one the models allow; 1: a model soundness violation
//! (evidence kept, printed); 2: the
//! harness failed or the backend is unavailable here (not root, tool
//! missing); 130: interrupted (workers stopped, mounts and loop devices
//! released).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crashlab::crash::CrashPoint;
use crashlab::realcut::campaign::{SoundnessConfig, WorkloadId, DEFAULT_WRITERS_PER_CUT};
use crashlab::realcut::columns::default_image_dir;
use crashlab::realcut::loopcut::{bench_loopcut, run_loopcut, RealPoolConfig};
use crashlab::realcut::ns_workload::{ns_plan, NsCampaignConfig, NsWorkloadId, DEFAULT_NS_CUTS};
use crashlab::realcut::report::SoundnessReport;
use crashlab::realcut::RealcutError;
use crashlab::vocab::{Backend, CutMethod, FsKind, Writeback};
use crashlab::{flag_limits, limits};

use super::campaign::absolute;
use super::campaign_outputs::write_output;

/// What a campaign cuts (`--workloads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WorkloadKinds {
    /// The page writers (`--scenario`): a file's bytes, judged by the
    /// simulated power-loss model.
    Pages,
    /// The namespace workloads (`--ns-workload`): names and sizes of files
    /// created, renamed, unlinked, grown, judged by the posix namespace model.
    Namespace,
}

#[derive(Args)]
pub struct SoundnessArgs {
    /// Where the cuts are made: loopcut (host kernel, loop devices; root) or
    /// vm (a guest kernel under qemu, killed; see scripts/vm-setup.sh).
    #[arg(long, default_value = "loopcut")]
    backend: Backend,
    /// Filesystems, comma-separated (loopcut: ext4, xfs, btrfs; vm: ext4).
    #[arg(long, value_delimiter = ',', default_value = "ext4,xfs,btrfs")]
    fs: Vec<FsKind>,
    /// How the power is cut (loopcut): shutdown (FS_IOC_SHUTDOWN, ext4/xfs)
    /// or raw-copy (O_DIRECT device copy). Default: shutdown where the
    /// filesystem has it, raw-copy for btrfs.
    #[arg(long)]
    cut: Option<CutMethod>,
    /// Trials per filesystem (scenario × op boundary, drawn from the seed;
    /// 1 to 1,000,000).
    #[arg(long, default_value_t = 60)]
    trials: u32,
    /// The seed every choice derives from. Default: a fresh one, printed.
    #[arg(long)]
    seed: Option<u64>,
    /// Writers, comma-separated: scenarios as MAPPING/POLICY, and
    /// probe/partial-msync. Default: the six shared scenarios and the probe.
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<WorkloadId>,
    /// Only this op boundary (before:K): reruns one trial of a report (with
    /// --workloads namespace: a step boundary of the namespace workloads).
    #[arg(long)]
    point: Option<CrashPoint>,
    /// What to cut, comma-separated: pages (the page writers of --scenario;
    /// the default) and/or namespace (loopcut: the namespace workloads of
    /// --ns-workload, each on a fresh directory, one workload per cut).
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    workloads: Vec<WorkloadKinds>,
    /// Namespace workloads, comma-separated (create, create-mmap,
    /// rename-over, unlink, new-segment, grow, reuse-name, sibling-fsync:
    /// without the sync POSIX requires; the same with +dirsync, or
    /// grow+msync: with it). Default: all sixteen.
    #[arg(long, value_delimiter = ',', value_name = "WORKLOADS")]
    ns_workload: Vec<NsWorkloadId>,
    /// Namespace cuts right after each workload's last step, per filesystem
    /// (1 to 100,000); one more cut is made at each earlier step boundary.
    /// With --point: this many cuts at that boundary. Default: 20.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    ns_cuts: Option<u32>,
    /// Size of the file under test, in bytes (times --writers-per-cut, at
    /// most half of the smallest filesystem image).
    #[arg(long, default_value_t = 64 * 1024)]
    size: u64,
    /// Acknowledged transactions per writer (at most 100,000).
    #[arg(long, default_value_t = 12)]
    txns: u32,
    /// loopcut: writers sharing one power cut, each on a file of its own,
    /// one after the other (the cut, unmount and log replay are most of a
    /// trial's cost). 1: every writer gets a cut of its own. Default: 4.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    writers_per_cut: Option<u32>,
    /// loopcut: the page cache of each file when its writer starts. read
    /// (default): dropped and read back, as after a remount. written:
    /// dropped and the file written again whole, as right after its
    /// creator wrote it (ext4 and xfs then hold it in large folios, which a
    /// ranged msync writes back whole: more unsynced pages survive).
    #[arg(long, value_name = "HOW")]
    page_cache: Option<crashlab::realcut::campaign::PageCacheStart>,
    /// loopcut: what pushes dirty pages to the disk while the writers run,
    /// so cuts also keep unsynced data. none (default): only the kernel's
    /// own writeback (30 s expiry: the writers finish long before).
    /// syncfs:US: a helper calls syncfs(2) on the filesystem every US
    /// microseconds (50 to 10,000,000) from before the first writer of a cut
    /// until the cut. expire:CS: vm.dirty_expire_centisecs and
    /// vm.dirty_writeback_centisecs set to CS (1 to 3000) for the campaign,
    /// restored on every exit (and by the next campaign after a SIGKILL).
    /// With --bench: the trials are measured with and without it.
    #[arg(long, value_name = "MODE")]
    writeback: Option<Writeback>,
    /// Directory for filesystem images and mount points (a fresh
    /// subdirectory is made and removed). Default: /dev/shm, else the temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where to write the JSON soundness report.
    #[arg(long, default_value = "reports/out/soundness.json")]
    out: PathBuf,
    /// Also write the report as a self-contained HTML page (per filesystem,
    /// per workload, every violation and lost file system with its rerun
    /// line) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also write JUnit XML to FILE: one test case per filesystem, a model
    /// soundness violation as its failure.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Where the evidence of a violation is kept (journal, facts, file, post-cut image).
    #[arg(long, default_value = "reports/out/soundness-evidence")]
    keep_dir: PathBuf,
    /// Worker processes (1 to 1024). Default: the number of cores.
    #[arg(long)]
    jobs: Option<usize>,
    /// A writer still running after this many seconds is killed (at least 1).
    #[arg(long, default_value_t = 60)]
    timeout: u32,
    /// Measure real-cut trials/s against a bare floor (mount, one write +
    /// msync, cut, umount, mount, read) instead of running a campaign.
    #[arg(long)]
    bench: bool,
    /// vm backend: the directory scripts/vm-setup.sh filled (kernel,
    /// modules, busybox, writer). Default: $CRASHLAB_VM_DIR.
    #[arg(long)]
    vm_dir: Option<PathBuf>,
    /// vm backend: the guest's disk. no-cache (default): the image file,
    /// virtio-blk cache=none: acknowledged writes are kept whole and in
    /// order. volatile-reorder, volatile-torn: a disk with a volatile write
    /// cache (NBD, served by crashlab): writes not flushed before the cut may
    /// be lost or reordered (any subset), or also torn per 512-byte sector;
    /// several disk states are checked per cut.
    #[arg(long, value_name = "DISK")]
    disk: Option<crashlab::realcut::vm::VmDisk>,
    /// With --disk volatile-*: disk states checked per cut (all writes kept,
    /// none kept, then random ones drawn from the seed). Default: 4.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(2..=64))]
    disk_states: Option<u32>,
    /// vm backend: the guest writes dirty pages back once they are this many
    /// centiseconds old, looking every as many (vm.dirty_expire_centisecs,
    /// vm.dirty_writeback_centisecs). Default: the kernel's (30 s, 5 s),
    /// longer than a trial, so unsynced pages never reach the disk; 1 sends
    /// them within ~20 ms, unflushed: what a volatile disk can lose or tear.
    /// The kill then waits 5 intervals (at least 100 ms) after the writer stops.
    #[arg(long, value_name = "CS", value_parser = clap::value_parser!(u32).range(1..=360000))]
    guest_writeback_cs: Option<u32>,
    /// vm backend: qemu's accelerator. auto (default): KVM if a probe guest
    /// boots under it within 10 s, else TCG (the report says which, and
    /// why); kvm: KVM or exit 2; tcg: software emulation. It changes the
    /// guests' speed, not what they do.
    #[arg(long, value_name = "ACCEL")]
    accel: Option<crashlab::realcut::vm_accel::AccelChoice>,
    /// Print only the final line.
    #[arg(long, short)]
    quiet: bool,
    /// Testing aid: corrupt each file after the cut (shows the violation path).
    #[arg(long, hide = true)]
    inject_fault: bool,
    /// Testing aid: mount in this mount namespace (visible in /proc/mounts).
    #[arg(long, hide = true)]
    host_mounts: bool,
}

fn default_dir() -> PathBuf {
    default_image_dir()
}

fn config(a: &SoundnessArgs) -> SoundnessConfig {
    SoundnessConfig {
        backend: a.backend,
        seed: a.seed.unwrap_or_else(crate::cli::campaign::fresh_seed),
        filesystems: a.fs.clone(),
        cut: a.cut,
        trials: a.trials,
        scenarios: if a.scenario.is_empty() { SoundnessConfig::default_scenarios() } else { a.scenario.clone() },
        point: a.point,
        file_size: a.size,
        txns: a.txns,
        // A vm trial boots a guest of its own: one writer per cut.
        writers_per_cut: match a.backend {
            Backend::Loopcut => a.writers_per_cut.unwrap_or(DEFAULT_WRITERS_PER_CUT),
            Backend::Vm => 1,
        },
        page_cache: match a.backend {
            Backend::Loopcut => Some(a.page_cache.unwrap_or_default()),
            Backend::Vm => None,
        },
        // With --bench, the pressure is what is measured against none.
        writeback: if a.bench { Writeback::None } else { a.writeback.unwrap_or_default() },
    }
}

/// The numeric flags against crashlab's limits (README, "Limits"), and the
/// campaign's memory against this machine's, before anything starts.
fn check_limits(a: &SoundnessArgs, cfg: &SoundnessConfig) -> Result<()> {
    if let Some(jobs) = a.jobs {
        flag_limits::check_jobs(jobs).map_err(anyhow::Error::msg)?;
    }
    flag_limits::check_timeout(a.timeout).map_err(anyhow::Error::msg)?;
    // The files of a cut group live in a filesystem image: a vm guest's is
    // 32 MiB, loopcut's as FsKind::image_size says.
    let smallest_image = match a.backend {
        Backend::Vm => crashlab::realcut::vm::IMAGE_BYTES,
        Backend::Loopcut => cfg.filesystems.iter().map(|f| f.image_size()).min().unwrap_or(u64::MAX),
    };
    limits::check_soundness_flags(cfg.file_size, cfg.txns, cfg.trials, cfg.writers_per_cut, smallest_image)
        .map_err(anyhow::Error::msg)?;
    let (jobs, guest) = match a.backend {
        Backend::Vm => (a.jobs.unwrap_or(1), crashlab::realcut::vm::GUEST_MEMORY_BYTES),
        Backend::Loopcut => (a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())), 0),
    };
    let filesystems = if a.backend == Backend::Vm { 1 } else { cfg.filesystems.len() };
    let scenarios = cfg.scenarios.len();
    let footprint =
        limits::soundness_footprint(cfg.file_size, cfg.txns, cfg.trials, filesystems, scenarios, jobs, guest);
    limits::check_footprint(&footprint, &limits::Resources::probe(None), "--dir").map_err(anyhow::Error::msg)
}

/// The namespace part of the campaign, if `--workloads` asks for it; and
/// the page writers dropped from `cfg` when it does not ask for them.
fn namespace_config(a: &SoundnessArgs, cfg: &mut SoundnessConfig) -> Result<Option<NsCampaignConfig>> {
    let kinds = if a.workloads.is_empty() { vec![WorkloadKinds::Pages] } else { a.workloads.clone() };
    let (pages, namespace) = (kinds.contains(&WorkloadKinds::Pages), kinds.contains(&WorkloadKinds::Namespace));
    if !namespace {
        if !a.ns_workload.is_empty() || a.ns_cuts.is_some() {
            anyhow::bail!("--ns-workload/--ns-cuts: only with --workloads namespace");
        }
        return Ok(None);
    }
    if a.backend != Backend::Loopcut {
        anyhow::bail!("--workloads namespace: the namespace workloads run on the loopcut backend only");
    }
    if a.bench {
        anyhow::bail!("--bench measures the page writers; leave out --workloads namespace");
    }
    if !pages && !a.scenario.is_empty() {
        anyhow::bail!("--scenario names page writers: add pages to --workloads (--workloads pages,namespace)");
    }
    if pages && a.point.is_some() {
        anyhow::bail!("--point reruns one kind of workload: use --workloads pages or --workloads namespace");
    }
    let ns = NsCampaignConfig {
        workloads: if a.ns_workload.is_empty() { NsWorkloadId::all() } else { a.ns_workload.clone() },
        cuts_after_last_step: a.ns_cuts.unwrap_or(DEFAULT_NS_CUTS),
        point: if pages { None } else { a.point },
    };
    if !pages {
        cfg.scenarios.clear();
        cfg.point = None;
    }
    // A bad --point or workload fails before anything starts.
    ns_plan(&cfg.filesystems, &ns).map_err(anyhow::Error::msg)?;
    Ok(Some(ns))
}

pub fn run(a: SoundnessArgs) -> Result<ExitCode> {
    let mut cfg = config(&a);
    check_limits(&a, &cfg)?;
    let ns = namespace_config(&a, &mut cfg)?;
    if a.backend != Backend::Vm
        && (a.disk.is_some() || a.disk_states.is_some() || a.guest_writeback_cs.is_some() || a.accel.is_some())
    {
        anyhow::bail!(
            "--disk/--disk-states/--guest-writeback-cs/--accel: only the vm backend has a choice of disk and guest; \
             loopcut's disk is a loop device over a file (no volatile write cache)"
        );
    }
    if a.backend == Backend::Vm && a.page_cache.is_some() {
        anyhow::bail!("--page-cache: only loopcut prepares the writer's file on the host; the vm guest boots cold");
    }
    if a.backend == Backend::Vm && a.writeback.is_some() {
        anyhow::bail!(
            "--writeback: only loopcut runs the writers on this host's kernel; for the vm guest's writeback use \
             --guest-writeback-cs CS"
        );
    }
    if let (Some(w @ Writeback::Syncfs { .. }), Some(_)) = (a.writeback, &ns) {
        anyhow::bail!(
            "--writeback {w}: the syncfs helper runs with the page writers' cuts only; with --workloads namespace \
             use --writeback expire:CS (it lowers the kernel's expiry for every cut) or none"
        );
    }
    if a.backend == Backend::Vm && a.writers_per_cut.is_some() {
        anyhow::bail!("--writers-per-cut: only loopcut shares a cut among writers; each vm trial boots its own guest");
    }
    if a.backend == Backend::Vm {
        if a.fs != [FsKind::Ext4] && a.fs != FsKind::ALL {
            anyhow::bail!("--fs: the vm backend tests ext4 only");
        }
        cfg.filesystems = vec![FsKind::Ext4];
        return vm(&a, cfg);
    }
    if !crashlab::realcut::sys::is_root() {
        return Err(RealcutError::NeedsRoot.into());
    }
    let base = a.dir.clone().unwrap_or_else(default_dir);
    let dir = crate::cli::campaign::work_dir(&Some(base))?;
    let pool = RealPoolConfig {
        command: RealPoolConfig::current_exe_command()?,
        jobs: a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1),
        dir: dir.path().to_owned(),
        keep_dir: absolute(&a.keep_dir)?,
        watchdog_secs: a.timeout,
        host_mounts: a.host_mounts,
        inject_fault: a.inject_fault,
    };
    if a.bench {
        return bench(&a, &cfg, &pool);
    }
    let cancel = crate::cli::campaign::cancel_flag()?;
    // Held here, in the CLI (not in a worker that may be killed), until
    // this function returns: on success, error, Ctrl-C and SIGTERM alike.
    let sysctls = crashlab::realcut::pressure::campaign_pressure(cfg.writeback)?;
    if !a.quiet {
        if let Some(saved) = sysctls.as_ref().and_then(|g| g.saved()) {
            eprintln!(
                "crashlab soundness: --writeback {}: dirty expiry lowered for the campaign; restored afterwards to {}",
                cfg.writeback,
                saved.0.iter().map(|(p, v)| format!("{}={v}", p.display())).collect::<Vec<_>>().join(", ")
            );
        } else if !cfg.writeback.is_none() {
            eprintln!(
                "crashlab soundness: --writeback {}: a syncfs helper runs during each cut's writers",
                cfg.writeback
            );
        }
        eprintln!(
            "crashlab soundness: seed {}; backend loopcut on {}; {} trials per filesystem, {} writer(s) per cut; \
             {} worker(s) in {}",
            cfg.seed,
            cfg.filesystems.iter().map(|f| format!("{f} ({})", cfg.cut_for(*f))).collect::<Vec<_>>().join(", "),
            cfg.trials,
            cfg.writers_per_cut,
            pool.jobs,
            dir.path().display()
        );
        if let Some(ns) = &ns {
            eprintln!(
                "crashlab soundness: namespace workloads {}; {} cut(s) after each one's last step, one at each earlier \
                 step boundary{}",
                ns.workloads.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(", "),
                ns.cuts_after_last_step,
                if cfg.scenarios.is_empty() { " (no page writers)" } else { "" }
            );
        }
        if let Some(note) = crashlab::environment::KernelConsole::cut_message_note_here() {
            eprintln!("note: {note}");
        }
    }
    let page_trials = if cfg.scenarios.is_empty() { 0 } else { cfg.trials as u64 * cfg.filesystems.len() as u64 };
    let ns_cuts = match &ns {
        Some(n) => ns_plan(&cfg.filesystems, n).map_err(anyhow::Error::msg)?.len() as u64,
        None => 0,
    };
    let progress = crate::cli::progress::CampaignProgress::new(page_trials + ns_cuts, a.quiet);
    let result = run_loopcut(&cfg, ns.as_ref(), &pool, &cancel, &|n| progress.advance(n));
    drop(progress);
    if let Some(g) = sysctls {
        g.restore()?;
    }
    let report = match result {
        Ok(r) => r,
        Err(RealcutError::Interrupted) => return Err(crashlab::LabError::Interrupted.into()),
        Err(e) => return Err(e.into()),
    };
    finish(&a, &report)
}

/// Write the report, print the summary and the final line, pick the exit code.
fn finish(a: &SoundnessArgs, report: &SoundnessReport) -> Result<ExitCode> {
    crashlab::report::file::write_json_report("--out", &a.out, report)?;
    if let Some(path) = &a.html {
        write_output("--html", path, &crashlab::report::soundness_html::render_soundness_html(report))?;
    }
    if let Some(path) = &a.junit {
        write_output("--junit", path, &crashlab::report::soundness_junit::soundness_junit_xml(report)?)?;
    }
    if !a.quiet {
        print!("{}", report.human_summary());
    }
    let s = &report.summary;
    // On a volatile disk a trial is one disk state of a cut.
    let pages = match report.filesystems.iter().find_map(|f| f.volatile_disk.as_ref()) {
        Some(v) => format!("{} disk states of {} real power cuts", s.trials, v.cuts),
        None if report.config.writers_per_cut > 1 => {
            format!("{} writers cut by real power cuts, up to {} per cut", s.trials, report.config.writers_per_cut)
        }
        None => format!("{} real power cuts", s.trials),
    };
    let (cuts, allowed) = match (s.namespace, report.filesystems.is_empty()) {
        (None, _) => (pages, "every post-cut file allowed by the model"),
        (Some(ns), true) => (
            format!("{} namespace workloads cut by real power cuts", ns.cuts),
            "every post-cut directory allowed by the posix namespace model",
        ),
        (Some(ns), false) => (
            format!("{pages} and {} namespace workloads cut by real power cuts", ns.cuts),
            "every post-cut file and directory allowed by the models",
        ),
    };
    if report.is_sound() {
        println!("sound: {cuts}, {allowed}; report: {}", a.out.display());
        Ok(ExitCode::SUCCESS)
    } else {
        let found = match (s.namespace, report.filesystems.is_empty()) {
            (Some(ns), true) => format!("{} namespace model soundness violation(s)", ns.violations),
            (Some(ns), false) => format!(
                "{} model soundness violation(s), {} namespace model soundness violation(s) and {} judge mismatch(es)",
                s.violations, ns.violations, s.judge_mismatches
            ),
            (None, _) => {
                format!("{} model soundness violation(s) and {} judge mismatch(es)", s.violations, s.judge_mismatches)
            }
        };
        println!("UNSOUND: {found} in {cuts}; evidence in {}; report: {}", a.keep_dir.display(), a.out.display());
        Ok(ExitCode::from(1))
    }
}

fn bench(a: &SoundnessArgs, cfg: &SoundnessConfig, pool: &RealPoolConfig) -> Result<ExitCode> {
    let scenarios: Vec<WorkloadId> = if a.scenario.is_empty() {
        vec!["shared/ms-sync-every-4".parse().expect("a valid scenario")]
    } else {
        a.scenario.clone()
    };
    println!(
        "crashlab soundness --bench: loopcut on {} (kernel {}), {} KiB file, {} trials per measurement",
        pool.dir.display(),
        crashlab::environment::kernel_release(),
        cfg.file_size / 1024,
        cfg.trials
    );
    println!(
        "floor = mount; loop {{ one page written + msync(MS_SYNC), the cut, umount, mount, read }}, no fork/model"
    );
    println!(
        "workload floor = the writer's own ops up to the same points, run bare in the worker, a cut each \
         (no fork/journal/model/reset)"
    );
    println!("trials = {} writer(s) per cut (--writers-per-cut)", cfg.writers_per_cut);
    let writeback = a.writeback.unwrap_or_default();
    if !writeback.is_none() {
        println!(
            "pressured = the same trials under --writeback {writeback}, alternating with the unpressured ones; \
             kept = trials that kept unsynced data (without / with)"
        );
    }
    if let Some(note) = crashlab::environment::KernelConsole::cut_message_note_here() {
        println!("note: {note}");
    }
    println!(
        "{:<6} {:<9} {:<24} {:>10} {:>11} {:>10} {:>6} {:>9}",
        "fs", "cut", "scenario", "floor t/s", "wl-floor t/s", "trials t/s", "ratio", "ratio/wl"
    );
    for &fs in &cfg.filesystems {
        for &scenario in &scenarios {
            let spec = cfg.spec(scenario)?;
            let cut = cfg.cut_for(fs);
            let b = bench_loopcut(pool, fs, cut, &spec, scenario, cfg.trials, cfg.writers_per_cut, writeback)?;
            println!(
                "{:<6} {:<9} {:<24} {:>10.1} {:>11.1} {:>10.1} {:>6.2} {:>9.2}",
                b.fs.name(),
                b.cut.name(),
                scenario.to_string(),
                b.floor_per_sec,
                b.workload_floor_per_sec,
                b.trials_per_sec,
                b.ratio,
                b.ratio_to_workload_floor
            );
            if let Some(p) = &b.pressured {
                println!(
                    "{:<6} {:<9} {:<24} pressured ({}): {:.1} trials/s, {:.2} of none; kept {}/{} → {}/{}",
                    b.fs.name(),
                    b.cut.name(),
                    scenario.to_string(),
                    p.writeback,
                    p.trials_per_sec,
                    p.ratio_to_none,
                    p.kept_more_without,
                    cfg.trials,
                    p.kept_more,
                    cfg.trials
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn vm(a: &SoundnessArgs, cfg: SoundnessConfig) -> Result<ExitCode> {
    use crashlab::realcut::vm::assets::VmAssets;
    use crashlab::realcut::vm::bench::bench_vm;
    use crashlab::realcut::vm::guest::VmGuest;
    use crashlab::realcut::vm::runs::{run_vm, VmRunConfig};
    use crashlab::realcut::vm::{VmDisk, VmOptions};
    use crashlab::realcut::volatile_disk::DEFAULT_STATES_PER_CUT;
    let disk = a.disk.unwrap_or_default();
    if disk == VmDisk::NoCache && a.disk_states.is_some() {
        anyhow::bail!(
            "--disk-states: only a volatile disk has several states per cut (--disk volatile-reorder|volatile-torn)"
        );
    }
    if a.bench && (disk != VmDisk::NoCache || a.guest_writeback_cs.is_some()) {
        anyhow::bail!("--bench --backend vm measures the no-cache disk and default guest only");
    }
    let states_per_cut = a.disk_states.map_or(DEFAULT_STATES_PER_CUT, |k| k as usize);
    let accel = a.accel.unwrap_or_default();
    let opts = VmOptions { disk, states_per_cut, writeback_centisecs: a.guest_writeback_cs, accel };
    let assets = VmAssets::locate(a.vm_dir.as_deref())?;
    let base = a.dir.clone().unwrap_or_else(default_dir);
    let dir = crate::cli::campaign::work_dir(&Some(base))?;
    let timeout = std::time::Duration::from_secs(a.timeout as u64);
    if a.bench {
        let scenario: WorkloadId = a.scenario.first().copied().unwrap_or(WorkloadId::PartialMsync);
        let spec = cfg.spec(scenario)?;
        let mut guest = VmGuest::new(assets, dir.path(), timeout)?;
        let accel = guest.choose_accel(accel)?;
        println!(
            "crashlab soundness --bench --backend vm: guest kernel {}, qemu {}, {} KiB file, {scenario}, {} trials",
            guest.assets.kernel_version,
            accel.describe(),
            cfg.file_size / 1024,
            cfg.trials
        );
        let b = bench_vm(&guest, &spec, cfg.trials)?;
        println!(
            "bare boot-and-kill: {:.1}/min; trials (copy image, boot, writer, kill, e2fsck, debugfs, judge): {:.1}/min; \
             ratio {:.2}",
            b.boot_and_kill_per_min,
            b.trials_per_min,
            b.trials_per_min / b.boot_and_kill_per_min
        );
        return Ok(ExitCode::SUCCESS);
    }
    let cancel = crate::cli::campaign::cancel_flag()?;
    let jobs = a.jobs.unwrap_or(1).max(1);
    if !a.quiet {
        let mut states = match disk {
            VmDisk::NoCache => String::new(),
            VmDisk::Volatile(_) => format!(", up to {states_per_cut} disk states per cut"),
        };
        if let Some(cs) = a.guest_writeback_cs {
            states.push_str(&format!(", guest writeback every {cs} cs"));
        }
        eprintln!(
            "crashlab soundness: seed {}; backend vm (guest kernel {}, ext4, qemu --accel {accel}); disk \
             {disk}{states}; {} trials; {jobs} guest(s) at once in {}",
            cfg.seed,
            assets.kernel_version,
            cfg.trials,
            dir.path().display()
        );
    }
    let progress = crate::cli::progress::CampaignProgress::new(cfg.trials as u64, a.quiet);
    let keep = absolute(&a.keep_dir)?;
    let run = VmRunConfig { work: dir.path().to_owned(), keep_dir: keep, jobs, timeout };
    let result = run_vm(&cfg, assets, &run, &opts, &cancel, &|n| progress.advance(n));
    drop(progress);
    let report = match result {
        Ok(r) => r,
        Err(RealcutError::Interrupted) => return Err(crashlab::LabError::Interrupted.into()),
        Err(e) => return Err(e.into()),
    };
    if let (Some(acc), false) = (&report.environment.accelerator, a.quiet) {
        eprintln!("crashlab soundness: qemu accelerator: {acc}");
    }
    let volatile = report.filesystems.iter().find_map(|f| f.volatile_disk.clone());
    if let (Some(v), false) = (&volatile, a.quiet) {
        print!("{}", v.human_summary());
    }
    let code = finish(a, &report)?;
    // A lost filesystem is a finding about the filesystem on such a disk,
    // not about the model: reported, and the exit code stays the model's.
    if let Some(v) = volatile.filter(|v| v.states_unreadable > 0) {
        println!(
            "FILESYSTEM LOST (a finding, not a model soundness violation): {} of {} disk state(s) the volatile-cache \
             model allows left an ext4 that e2fsck -fy could not repair, or no file; evidence in {}; report: {}",
            v.states_unreadable,
            v.states_checked,
            a.keep_dir.display(),
            a.out.display()
        );
        for (cause, n) in v.unreadable_causes() {
            println!("  {n} of them: {cause}");
        }
    }
    Ok(code)
}
