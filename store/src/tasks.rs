//! Tasks (migration 0025): support's worklist, opened by the event trigger, worked by people.
//! Every change by a person is a row of the task's history; a task's cause (run, break,
//! connection) is never changed from here.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, StoreError, TenantTx};

/// One task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: Uuid,
    pub kind: String,
    pub cause: String,
    pub subject: String,
    pub connection_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub title: String,
    pub priority: String,
    pub status: String,
    pub due_at: DateTime<Utc>,
    pub assignee: Option<String>,
    pub occurrences: i32,
    pub resolution_note: Option<String>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which tasks to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub assignee: Option<String>,
    /// Only tasks about a client (an advisor's view).
    pub client_tasks_only: bool,
    pub limit: i64,
}

macro_rules! select_task {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Task,
            r#"SELECT id, kind, cause, subject, connection_id, client_id, title, priority, status,
                due_at, assignee, occurrences, resolution_note, closed_by, closed_at, created_at,
                updated_at
             FROM tasks "# + $tail
            $(, $arg)*,
        )
    };
}

/// The tenant's tasks, newest first.
pub async fn list(tx: &mut TenantTx, f: &TaskFilter) -> Result<Vec<Task>> {
    Ok(select_task!(
        "WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
           AND ($3::text IS NULL OR assignee = $3) AND (NOT $4 OR client_id IS NOT NULL)
         ORDER BY seq DESC LIMIT $5",
        f.status,
        f.kind,
        f.assignee,
        f.client_tasks_only,
        f.limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Counts of the tasks the filter's scope shows (its status, kind and assignee ignored), by
/// `status`, `kind` and `assignee` (an unassigned task counts under the empty assignee).
pub async fn counts(
    tx: &mut TenantTx,
    client_tasks_only: bool,
) -> Result<Vec<(String, String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT 'status' AS "dimension!", status AS "value!", count(*) AS "n!" FROM tasks
             WHERE NOT $1 OR client_id IS NOT NULL GROUP BY status
         UNION ALL
         SELECT 'kind', kind, count(*) FROM tasks
             WHERE NOT $1 OR client_id IS NOT NULL GROUP BY kind
         UNION ALL
         SELECT 'assignee', coalesce(assignee, ''), count(*) FROM tasks
             WHERE (NOT $1 OR client_id IS NOT NULL) AND status IN ('open', 'in_progress')
             GROUP BY assignee"#,
        client_tasks_only
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.dimension, r.value, r.n))
        .collect())
}

/// The task with this id.
pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Task> {
    select_task!("WHERE id = $1", id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// One entry of a task's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub note: Option<String>,
}

pub async fn history(tx: &mut TenantTx, id: Uuid) -> Result<Vec<HistoryEntry>> {
    Ok(sqlx::query_as!(
        HistoryEntry,
        "SELECT at, actor, action, note FROM task_history WHERE task_id = $1 ORDER BY seq",
        id
    )
    .fetch_all(tx.conn())
    .await?)
}

async fn record(
    tx: &mut TenantTx,
    id: Uuid,
    actor: &str,
    action: &str,
    note: Option<&str>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO task_history (tenant_id, task_id, actor, action, note)
         VALUES ($1, $2, $3, $4, $5)",
        tx.tenant().0,
        id,
        actor,
        action,
        note
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Assigns a task (an open one moves to in progress); a closed task is a conflict.
pub async fn assign(tx: &mut TenantTx, id: Uuid, assignee: &str, actor: &str) -> Result<Task> {
    let updated = sqlx::query!(
        "UPDATE tasks SET assignee = $2, status = 'in_progress', updated_at = now()
         WHERE id = $1 AND status IN ('open', 'in_progress')",
        id,
        assignee
    )
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        let task = get(tx, id).await?;
        return Err(StoreError::Conflict(format!("the task is {}", task.status)));
    }
    record(tx, id, actor, "assigned", Some(assignee)).await?;
    get(tx, id).await
}

/// Adds a comment (to a task in any status).
pub async fn comment(tx: &mut TenantTx, id: Uuid, text: &str, actor: &str) -> Result<Task> {
    let task = get(tx, id).await?;
    record(tx, id, actor, "commented", Some(text)).await?;
    sqlx::query!("UPDATE tasks SET updated_at = now() WHERE id = $1", id)
        .execute(tx.conn())
        .await?;
    Ok(task)
}

/// Resolves or dismisses (`to`) an open task with a note; a closed task is a conflict.
pub async fn close(tx: &mut TenantTx, id: Uuid, to: &str, note: &str, actor: &str) -> Result<Task> {
    let updated = sqlx::query!(
        "UPDATE tasks SET status = $2, resolution_note = $3, closed_by = $4, closed_at = now(),
            updated_at = now()
         WHERE id = $1 AND status IN ('open', 'in_progress')",
        id,
        to,
        note,
        actor
    )
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        let task = get(tx, id).await?;
        return Err(StoreError::Conflict(format!(
            "the task is already {}",
            task.status
        )));
    }
    record(tx, id, actor, to, Some(note)).await?;
    get(tx, id).await
}

impl crate::Store {
    /// Flags every late bank delivery not flagged yet (`delivery.late` and its task): a
    /// connection's latest scheduled sync older than `grace` with no successful sync since.
    /// Answers how many it flagged.
    pub async fn flag_late_deliveries(&self, grace: chrono::Duration) -> Result<i32> {
        let grace = sqlx::postgres::types::PgInterval::try_from(grace)
            .map_err(|e| StoreError::Data(format!("grace: {e}")))?;
        Ok(
            sqlx::query_scalar!(r#"SELECT flag_late_deliveries($1) AS "n!""#, grace)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
