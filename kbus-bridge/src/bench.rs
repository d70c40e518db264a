//! The baseline of the bridge bench: two plain Zenoh processes doing what a
//! bridge hop does, without KBUS (`kbus-bridge --zenoh-bench serve|run`).
//!
//! `serve` counts 64-byte puts on `bench/ann` and answers queries:
//! `bench/count` with the count so far, `bench/echo` with its payload.
//! `run N M` puts 200 messages untimed and waits until the server has
//! counted them, then puts N messages and waits until the server has
//! counted them all, then makes M sequential echo queries, and prints
//! `announcements/s <x>`, `round trips/s <y>` and the CPU time the `run`
//! process used per put while putting and waiting for the count
//! (`publisher CPU us/put <z>`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zenoh::qos::CongestionControl;

use crate::zenoh_link::{config, ZenohOptions};

/// Run the `serve` or `run` side.
pub async fn main(role: String, opts: ZenohOptions, n: u64, m: u64) -> Result<(), String> {
    let session = zenoh::open(config(&opts)?)
        .await
        .map_err(|e| e.to_string())?;
    match role.as_str() {
        "serve" => {
            let count = Arc::new(AtomicU64::new(0));
            let c = count.clone();
            let _sub = session
                .declare_subscriber("bench/ann")
                .callback(move |_| {
                    c.fetch_add(1, Ordering::Relaxed);
                })
                .await
                .map_err(|e| e.to_string())?;
            let c = count.clone();
            let _q = session
                .declare_queryable("bench/*")
                .callback(move |q| {
                    use zenoh::Wait;
                    let payload = if q.key_expr().as_str() == "bench/count" {
                        c.load(Ordering::Relaxed).to_le_bytes().to_vec()
                    } else {
                        q.payload()
                            .map(|p| p.to_bytes().to_vec())
                            .unwrap_or_default()
                    };
                    let ke = q.key_expr().clone();
                    let _ = q.reply(ke, payload).wait();
                })
                .await
                .map_err(|e| e.to_string())?;
            println!("serving");
            std::future::pending::<()>().await;
            Ok(())
        }
        "run" => {
            // Wait until the server answers.
            let start = Instant::now();
            while ask(&session, "bench/count", vec![]).await.is_none() {
                if start.elapsed() > Duration::from_secs(30) {
                    return Err("no bench server".into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let payload = vec![0x5a; 64];
            // Untimed first (routes, buffers), as the bridge bench does.
            burst(&session, &payload, WARM_UP).await?;
            let cpu = process_cpu();
            let t = Instant::now();
            burst(&session, &payload, n).await?;
            let ann = n as f64 / t.elapsed().as_secs_f64();
            let cpu_per_put = process_cpu().saturating_sub(cpu).as_secs_f64() * 1e6 / n as f64;
            let t = Instant::now();
            for _ in 0..m {
                ask(&session, "bench/echo", payload.clone())
                    .await
                    .ok_or("no echo")?;
            }
            let rr = m as f64 / t.elapsed().as_secs_f64();
            println!("announcements/s {ann:.0}");
            println!("round trips/s {rr:.0}");
            println!("publisher CPU us/put {cpu_per_put:.0}");
            Ok(())
        }
        other => Err(format!("--zenoh-bench serve|run, not {other}")),
    }
}

/// Announcements put before the timed ones.
const WARM_UP: u64 = 200;

/// Put `n` messages on `bench/ann` and wait until the server has counted
/// them.
async fn burst(session: &zenoh::Session, payload: &[u8], n: u64) -> Result<(), String> {
    let before = count(session).await;
    for _ in 0..n {
        session
            .put("bench/ann", payload.to_vec())
            .congestion_control(CongestionControl::Block)
            .await
            .map_err(|e| e.to_string())?;
    }
    while count(session).await < before + n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn ask(session: &zenoh::Session, key: &str, payload: Vec<u8>) -> Option<Vec<u8>> {
    let replies = session.get(key).payload(payload).await.ok()?;
    let reply = replies.recv_async().await.ok()?;
    reply.result().ok().map(|s| s.payload().to_bytes().to_vec())
}

async fn count(session: &zenoh::Session) -> u64 {
    ask(session, "bench/count", vec![])
        .await
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// CPU time used so far by every thread of this process (Linux
/// `/proc/self/task/*/schedstat`; zero where it cannot be read).
fn process_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| {
            std::fs::read_to_string(t.path().join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    Duration::from_nanos(ns)
}
