//! Tasks: support's worklist. The system opens them (a failed or dead sync, a reconciliation
//! break, a certificate at risk: one open task per cause) and resolves a sync's task when the
//! connection's next sync succeeds; people assign, comment, resolve and dismiss them. Every
//! change is audited and in the task's history. Advisors see the tasks about a client.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use eam_store::tasks::{self, HistoryEntry, Task, TaskFilter};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditContext;
use crate::caller::{BearerToken, Caller};
use crate::permissions::{Action, Role};
use crate::problem::{ApiError, not_found};
use crate::routes::page_limit;
use crate::state::ApiState;

pub struct TasksApi(pub ApiState);

#[derive(Object)]
struct TaskView {
    id: Uuid,
    /// `sync_failed`, `sync_dead`, `break`, `certificate` or `delivery_late`.
    kind: String,
    /// What it is about, one open task each: `connection:<id>`, `break:<id>`,
    /// `certificate:<connection id>`.
    cause: String,
    /// The latest run, break or connection it points to (`run:<id>`, ...).
    subject: String,
    connection_id: Option<Uuid>,
    client_id: Option<Uuid>,
    title: String,
    /// `high`, `normal` or `low`.
    priority: String,
    /// `open`, `in_progress`, `resolved` or `dismissed`.
    status: String,
    /// When it should be dealt with (its kind's SLA from its creation).
    due_at: DateTime<Utc>,
    overdue: bool,
    assignee: Option<String>,
    /// How many times its cause occurred while it was open.
    occurrences: i32,
    resolution_note: Option<String>,
    closed_by: Option<String>,
    closed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn view(t: Task, now: DateTime<Utc>) -> TaskView {
    TaskView {
        overdue: matches!(t.status.as_str(), "open" | "in_progress") && t.due_at < now,
        id: t.id,
        kind: t.kind,
        cause: t.cause,
        subject: t.subject,
        connection_id: t.connection_id,
        client_id: t.client_id,
        title: t.title,
        priority: t.priority,
        status: t.status,
        due_at: t.due_at,
        assignee: t.assignee,
        occurrences: t.occurrences,
        resolution_note: t.resolution_note,
        closed_by: t.closed_by,
        closed_at: t.closed_at,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

#[derive(Object)]
struct HistoryView {
    at: DateTime<Utc>,
    /// A user's subject, or `system`.
    actor: String,
    /// `created`, `recurred`, `assigned`, `commented`, `resolved`, `dismissed`,
    /// `auto_resolved`.
    action: String,
    note: Option<String>,
}

impl From<HistoryEntry> for HistoryView {
    fn from(h: HistoryEntry) -> Self {
        HistoryView {
            at: h.at,
            actor: h.actor,
            action: h.action,
            note: h.note,
        }
    }
}

#[derive(Object)]
struct TaskDetail {
    task: TaskView,
    /// Oldest first, comments included.
    history: Vec<HistoryView>,
}

#[derive(Object)]
struct TaskCounts {
    by_status: BTreeMap<String, i64>,
    by_kind: BTreeMap<String, i64>,
    /// Open and in-progress tasks per assignee; `""`: unassigned.
    by_assignee: BTreeMap<String, i64>,
}

#[derive(Object)]
struct TaskPage {
    tasks: Vec<TaskView>,
    /// Over every task the caller may see (not only this page's filters).
    counts: TaskCounts,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct Assign {
    /// The user's subject.
    #[oai(validator(min_length = 1, max_length = 255))]
    assignee: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct Note {
    #[oai(validator(min_length = 1, max_length = 4000))]
    text: String,
}

/// An advisor without a staff role sees only tasks about a client.
fn client_tasks_only(caller: &Caller) -> bool {
    !caller
        .roles
        .iter()
        .any(|r| matches!(r, Role::TenantAdmin | Role::Ops | Role::Support))
}

fn check_one_of(name: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(ApiError::bad_request(format!(
            "{name}: '{v}' is not one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

impl TasksApi {
    async fn visible(
        &self,
        tx: &mut eam_store::TenantTx,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Task, ApiError> {
        let task = tasks::get(tx, id).await.map_err(not_found("task", id))?;
        if client_tasks_only(caller) && task.client_id.is_none() {
            return Err(ApiError::not_found(format!("task {id} not found")));
        }
        Ok(task)
    }

    async fn detail(
        &self,
        tx: &mut eam_store::TenantTx,
        task: Task,
    ) -> Result<TaskDetail, ApiError> {
        let history = tasks::history(tx, task.id).await?;
        Ok(TaskDetail {
            task: view(task, Utc::now()),
            history: history.into_iter().map(HistoryView::from).collect(),
        })
    }
}

#[OpenApi(tag = "crate::Tag::Tasks")]
impl TasksApi {
    /// The worklist, newest first, with counts by status, kind and assignee.
    #[oai(path = "/tasks", method = "get", operation_id = "list_tasks")]
    async fn list(
        &self,
        token: BearerToken,
        status: Query<Option<String>>,
        kind: Query<Option<String>>,
        assignee: Query<Option<String>>,
        limit: Query<Option<u32>>,
    ) -> Result<Json<TaskPage>, ApiError> {
        let limit = page_limit(limit.0, 100)?;
        check_one_of(
            "status",
            status.0.as_deref(),
            &["open", "in_progress", "resolved", "dismissed"],
        )?;
        check_one_of(
            "kind",
            kind.0.as_deref(),
            &[
                "sync_failed",
                "sync_dead",
                "break",
                "certificate",
                "delivery_late",
            ],
        )?;
        let (caller, mut tx) = self.0.begin(&token, Action::ReadTasks).await?;
        let scoped = client_tasks_only(&caller);
        let rows = tasks::list(
            &mut tx,
            &TaskFilter {
                status: status.0,
                kind: kind.0,
                assignee: assignee.0,
                client_tasks_only: scoped,
                limit,
            },
        )
        .await?;
        let mut counts = TaskCounts {
            by_status: BTreeMap::new(),
            by_kind: BTreeMap::new(),
            by_assignee: BTreeMap::new(),
        };
        for (dimension, value, n) in tasks::counts(&mut tx, scoped).await? {
            let map = match dimension.as_str() {
                "status" => &mut counts.by_status,
                "kind" => &mut counts.by_kind,
                _ => &mut counts.by_assignee,
            };
            map.insert(value, n);
        }
        let now = Utc::now();
        Ok(Json(TaskPage {
            tasks: rows.into_iter().map(|t| view(t, now)).collect(),
            counts,
        }))
    }

    /// One task with its history.
    #[oai(path = "/tasks/:id", method = "get", operation_id = "get_task")]
    async fn get(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<TaskDetail>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ReadTasks).await?;
        let task = self.visible(&mut tx, &caller, id.0).await?;
        Ok(Json(self.detail(&mut tx, task).await?))
    }

    /// Assigns a task to a user (an open task moves to in progress). Audited.
    #[oai(
        path = "/tasks/:id/assign",
        method = "post",
        operation_id = "assign_task"
    )]
    async fn assign(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<Assign>,
    ) -> Result<Json<TaskDetail>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ManageTasks).await?;
        self.visible(&mut tx, &caller, id.0).await?;
        let task = tasks::assign(&mut tx, id.0, &body.0.assignee, &caller.subject).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "task.assigned",
                format!("task:{}", id.0),
                json!({"assignee": body.0.assignee}),
            )
            .await?;
        let detail = self.detail(&mut tx, task).await?;
        tx.commit().await?;
        Ok(Json(detail))
    }

    /// Adds a comment. Audited.
    #[oai(
        path = "/tasks/:id/comments",
        method = "post",
        operation_id = "comment_task"
    )]
    async fn comment(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<Note>,
    ) -> Result<Json<TaskDetail>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ManageTasks).await?;
        self.visible(&mut tx, &caller, id.0).await?;
        let task = tasks::comment(&mut tx, id.0, &body.0.text, &caller.subject).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "task.commented",
                format!("task:{}", id.0),
                json!({}),
            )
            .await?;
        let detail = self.detail(&mut tx, task).await?;
        tx.commit().await?;
        Ok(Json(detail))
    }

    /// Resolves a task with a note (its run or break is left as it is). Audited.
    #[oai(
        path = "/tasks/:id/resolve",
        method = "post",
        operation_id = "resolve_task"
    )]
    async fn resolve(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<Note>,
    ) -> Result<Json<TaskDetail>, ApiError> {
        self.close(req, token, id.0, "resolved", body.0).await
    }

    /// Dismisses a task with a note (nothing to do). Audited.
    #[oai(
        path = "/tasks/:id/dismiss",
        method = "post",
        operation_id = "dismiss_task"
    )]
    async fn dismiss(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<Note>,
    ) -> Result<Json<TaskDetail>, ApiError> {
        self.close(req, token, id.0, "dismissed", body.0).await
    }
}

impl TasksApi {
    async fn close(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Uuid,
        to: &str,
        note: Note,
    ) -> Result<Json<TaskDetail>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ManageTasks).await?;
        self.visible(&mut tx, &caller, id).await?;
        let task = tasks::close(&mut tx, id, to, &note.text, &caller.subject).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                &format!("task.{to}"),
                format!("task:{id}"),
                json!({"note": note.text}),
            )
            .await?;
        let detail = self.detail(&mut tx, task).await?;
        tx.commit().await?;
        Ok(Json(detail))
    }
}
