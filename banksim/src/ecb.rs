//! Market data: the ECB's euro reference rates in its own XML format, under [`ECB_PREFIX`],
//! behind the same mutual-TLS listener as the banks.
//!
//! - `GET {prefix}/eurofxref-daily.xml`: the latest business day's rates.
//! - `GET {prefix}/eurofxref-hist.xml`: every business day of the dataset, newest first.
//!
//! Rates are the dataset's ([`Dataset::fx_rate`]), so tests compare what was synced with them.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::NaiveDate;
use poem::http::header::CONTENT_TYPE;
use poem::web::Data;
use poem::{Endpoint, EndpointExt, Response, Route, get, handler};

use crate::dataset::Dataset;
use crate::state::SimState;

/// Where the ECB reference rates are mounted (as `/stats/eurofxref` on the ECB's site).
pub const ECB_PREFIX: &str = "/ecb/stats/eurofxref";

/// The routes, relative to [`ECB_PREFIX`]; they expect the [`SimState`] as request data.
pub(crate) fn routes() -> impl Endpoint<Output = Response> {
    Route::new()
        .at("/eurofxref-daily.xml", get(daily))
        .at("/eurofxref-hist.xml", get(history))
        .map_to_response()
}

#[handler]
fn daily(state: Data<&Arc<SimState>>) -> Response {
    let dataset = &state.dataset;
    let days = dataset.fx_days();
    xml(render(dataset, days.last().copied().into_iter()))
}

#[handler]
fn history(state: Data<&Arc<SimState>>) -> Response {
    let dataset = &state.dataset;
    xml(render(dataset, dataset.fx_days().into_iter().rev()))
}

fn xml(body: String) -> Response {
    Response::builder()
        .header(CONTENT_TYPE, "text/xml")
        .body(body)
}

/// The ECB's document for the given days, in the order given.
pub fn render(dataset: &Dataset, days: impl Iterator<Item = NaiveDate>) -> String {
    let mut out = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<gesmes:Envelope xmlns:gesmes=\"http://www.gesmes.org/xml/2002-08-01\" ",
        "xmlns=\"http://www.ecb.int/vocabulary/2002-08-01/eurofxref\">\n",
        "\t<gesmes:subject>Reference rates</gesmes:subject>\n",
        "\t<gesmes:Sender>\n\t\t<gesmes:name>European Central Bank</gesmes:name>\n",
        "\t</gesmes:Sender>\n\t<Cube>\n"
    ));
    for day in days {
        let _ = writeln!(out, "\t\t<Cube time='{day}'>");
        for currency in dataset.fx_currencies() {
            if let Some(rate) = dataset.fx_rate(currency, day) {
                let _ = writeln!(out, "\t\t\t<Cube currency='{currency}' rate='{rate}'/>");
            }
        }
        out.push_str("\t\t</Cube>\n");
    }
    out.push_str("\t</Cube>\n</gesmes:Envelope>\n");
    out
}
