//! Floods beside the signed stream: phase 3f (unsigned webhooks) and phase
//! 10 (refused operator requests on 4 KB paths).

use super::*;

/// An open-loop signed stream while `flooders` clients send unsigned requests
/// as fast as they can: (the signed stream, the flood).
pub(super) async fn flooded_open_loop(
    client: &WebhookClient,
    run: &str,
    rate: u32,
    seconds: u32,
    flooders: usize,
) -> (Figures, Figures) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood = {
        let (stop, answered) = (stop.clone(), answered.clone());
        let client = client.clone();
        let run = run.to_owned();
        tokio::spawn(async move {
            let start = Instant::now();
            let results: Vec<Vec<(Duration, bool)>> = futures::future::join_all((0..flooders).map(|f| {
                let (stop, answered) = (stop.clone(), answered.clone());
                let client = client.clone();
                let run = run.clone();
                async move {
                    let mut out = vec![];
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let body =
                            serde_json::to_vec(&started("junk", "app", &format!("junk-{run}-{f}-{i}"), "x")).unwrap();
                        let t = Instant::now();
                        let ok = matches!(client.send_raw(body, vec![]).await, Ok(r) if r.status == 401);
                        out.push((t.elapsed(), ok));
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        i += 1;
                    }
                    out
                }
            }))
            .await;
            let all: Vec<(Duration, bool)> = results.into_iter().flatten().collect();
            let errors = all.iter().filter(|(_, ok)| !ok).count();
            figures(all.into_iter().map(|(d, _)| d).collect(), start.elapsed(), errors)
        })
    };
    // The signed stream starts once the flood is in full swing.
    while answered.load(std::sync::atomic::Ordering::Relaxed) < flooders * 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let signed = open_loop(client, &format!("fl{run}"), rate, seconds).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flood = flood.await.expect("the flood task");
    (signed, flood)
}
