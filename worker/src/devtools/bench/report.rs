//! What the bench prints beside its figures: the disk's fsync probe, the
//! build, and the ratios the targets are stated in.

use super::*;

/// The disk's own fsync latency, measured here and now: a durable ack cannot
/// beat it, and its tail shows through in the ack's p99.
pub(super) fn fsync_probe(dir: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let mut lat = vec![];
    for _ in 0..1000 {
        f.write_all(&[0u8; 4096])?;
        let t = Instant::now();
        f.sync_data()?;
        lat.push(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    let fig = figures(lat.clone(), Duration::from_secs(1), 0);
    let max = lat.iter().max().copied().unwrap_or_default();
    Ok(format!(
        "disk: 1000 x fsync(4 KiB): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        fig.p50_ms,
        fig.p99_ms,
        max.as_secs_f64() * 1000.0
    ))
}

pub(super) fn print_burst_ratio(b: &burst::Burst) {
    println!(
        "  burst end to end / bare ceiling           {:>6.2}x   [>= 1.5x]  {} ({:.1} vs {:.1} events/s)",
        b.ratio,
        verdict(b.ratio >= 1.5),
        b.bridge.per_second,
        b.bare_per_second
    );
}

pub(super) fn print_postgres(
    first: &Figures,
    pg_first: &Figures,
    pg_rated: &Figures,
    bare: Option<&Figures>,
    rate: u32,
) {
    let ratio = pg_first.per_second / first.per_second.max(1e-9);
    println!(
        "  Postgres: ack throughput {:.0}/s ({ratio:.2}x SQLite [>= 0.5x] {}), p99 at {rate} req/s {:.2} ms{}",
        pg_first.per_second,
        verdict(ratio >= 0.5),
        pg_rated.p99_ms,
        bare.map(|b| format!(", ack / bare {:.1}x", pg_first.per_second / b.per_second.max(1e-9))).unwrap_or_default()
    );
}

pub(super) fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

pub(super) fn build_kind() -> &'static str {
    if cfg!(debug_assertions) { "debug build (use --release for real figures)" } else { "release build" }
}
