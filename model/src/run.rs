//! Sync runs: their statuses and the one table of allowed transitions, what started them, and
//! the classified error a run ends with.

use serde::{Deserialize, Serialize};

use crate::ErrorClass;

/// Status of a sync run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    SucceededWithBreaks,
    Failed,
    Dead,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::SucceededWithBreaks,
        RunStatus::Failed,
        RunStatus::Dead,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::SucceededWithBreaks => "succeeded_with_breaks",
            RunStatus::Failed => "failed",
            RunStatus::Dead => "dead",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        RunStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A terminal run never changes again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// The allowed transitions, in one place for the worker and the API alike.
    pub fn can_become(self, next: RunStatus) -> bool {
        use RunStatus::*;
        matches!(
            (self, next),
            (Queued, Running | Cancelled)
                // Running -> Queued: a transient failure waits for its next attempt, or the
                // worker died (lease expired) and the run goes back to the queue. A run is
                // never taken over while running: a duplicate delivery finds it running and
                // leaves it alone.
                | (Running, Queued)
                | (Running, Succeeded | SucceededWithBreaks | Failed | Dead | Cancelled)
        )
    }

    /// The statuses a run may be in to move to `next`.
    pub fn sources(next: RunStatus) -> Vec<String> {
        RunStatus::ALL
            .into_iter()
            .filter(|s| s.can_become(next))
            .map(|s| s.as_str().to_owned())
            .collect()
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Manual,
    Schedule,
    Retry,
    /// Re-normalizes the archived documents of an earlier run, without calling the bank.
    Replay,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::Retry => "retry",
            Trigger::Replay => "replay",
        }
    }
}

/// A run's final error: its class (which decides retry and the suggested action) and the
/// message support reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub class: ErrorClass,
    pub message: String,
}

impl RunError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        RunError {
            class,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queued_and_running_runs_move_and_every_status_has_a_name() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
            if status.is_terminal() {
                assert!(RunStatus::ALL.iter().all(|n| !status.can_become(*n)));
            }
        }
        assert!(RunStatus::Queued.can_become(RunStatus::Running));
        assert!(!RunStatus::Queued.can_become(RunStatus::Succeeded));
        assert_eq!(
            RunStatus::sources(RunStatus::Cancelled),
            vec!["queued".to_owned(), "running".to_owned()]
        );
    }
}
