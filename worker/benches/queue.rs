//! Empty-job throughput through apalis-redis, with the worker's real queue settings.
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo bench -p eam-worker --bench queue`
//! (`EAM_BENCH_TASKS`, default 5000). Each configuration uses a queue of its own, deleted after.

use std::time::Duration;

use eam_queue::SyncQueue;
use eam_worker::queue::deliver_empty_tasks;

fn main() -> anyhow::Result<()> {
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let tasks: usize = std::env::var("EAM_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        println!("| concurrency | poll interval | tasks | pushes/s | deliveries/s |");
        println!("|---|---|---|---|---|");
        for (concurrency, poll_ms) in [(1, 300), (4, 300), (16, 300), (16, 50)] {
            let name = format!("eam-bench-queue-{}", uuid::Uuid::new_v4().simple());
            let queue = SyncQueue::connect(&redis_url, &name).await?;
            let poll = Duration::from_millis(poll_ms);
            let run = deliver_empty_tasks(&queue, tasks, concurrency, poll).await;
            delete_queue(&redis_url, &name).await?;
            let run = run?;
            println!(
                "| {concurrency} | {poll_ms} ms | {tasks} | {:.0} | {:.0} |",
                tasks as f64 / run.push.as_secs_f64(),
                tasks as f64 / run.deliver.as_secs_f64()
            );
        }
        Ok(())
    })
}

async fn delete_queue(redis_url: &str, name: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{name}*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}
