//! W3C Trace Context (`traceparent`): a caller's trace id is carried into the API's request id,
//! the run it starts and every request the worker sends to the bank for that run, so one id
//! finds a sync from the integrator's call to the bank's logs.

/// The trace id of a `traceparent` header value (`00-<32 hex>-<16 hex>-<2 hex>`), if it is a
/// valid version-00 one (lower-case hex, neither id all zeros).
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = version == "00"
        && parts.next().is_none()
        && is_trace_id(trace)
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2);
    valid.then_some(trace)
}

/// Whether `id` can be a trace id: 32 lower-case hex digits, not all zeros (a UUID's simple
/// form is one: the API's own request ids and run ids are).
pub fn is_trace_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && id.bytes().any(|b| b != b'0')
}

/// A `traceparent` value for a request of the trace `trace_id`, from the span `span_id` (16
/// hex digits), sampled.
pub fn traceparent(trace_id: &str, span_id: &str) -> String {
    format!("00-{trace_id}-{span_id}-01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_version_00_header_yields_its_trace_id() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id_of(good), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad}");
        }
        assert_eq!(
            traceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
            good
        );
        assert!(is_trace_id(&uuid_like()));
    }

    fn uuid_like() -> String {
        "01a2532773697365a15d14e3541fae05".to_owned()
    }
}
