//! Nothing a statement can hold makes a renderer panic: any text (control characters,
//! scripts the font lacks, empty, very long) and any decimal Decimal can hold, in names,
//! figures, weights and returns, renders.

mod fixtures;

use eam_report::{render_csv_zip, render_pdf};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn any_decimal() -> impl Strategy<Value = Decimal> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        0u32..=28,
    )
        .prop_map(|(lo, mid, hi, negative, scale)| {
            Decimal::from_parts(lo, mid, hi, negative, scale)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn any_text_and_any_figure_render(
        name in any::<String>(),
        text in "\\PC{0,300}|[\\x00-\\x1f ]{0,20}",
        figure in any_decimal(),
        other in any_decimal(),
    ) {
        let mut s = fixtures::with_transactions(6);
        s.firm.name = name.clone();
        s.client.name = name.clone();
        s.client.reference = Some(text.clone());
        s.notes = vec![text.clone(), name.clone()];
        s.valuation.total = Some(figure);
        s.valuation.reasons = vec![text.clone()];
        if let Some(slice) = s.valuation.by_asset_class.first_mut() {
            slice.key = text.clone();
            slice.value = figure;
            slice.weight = Some(other);
        }
        let account = &mut s.positions[0].accounts[0];
        account.account = name.clone();
        let p = &mut account.positions[0];
        p.security_name = text.clone();
        p.quantity = figure;
        p.price = Some(other);
        p.local_value = Some(figure);
        p.value = Some(other);
        p.reason = Some(name.clone());
        // Two huge values side by side: their account total leaves Decimal's range.
        account.positions[1].value = Some(other);
        s.cash[0].amount = figure;
        s.cash[0].value = Some(other);
        s.fx_rates[0].rate = other;
        s.fx_rates[0].sources = vec![text.clone()];
        s.transactions[0].description = text.clone();
        s.transactions[0].amount = figure;
        s.performance.start_value = Some(figure);
        s.performance.net_flows = Some(other);
        if let Some(t) = s.performance.time_weighted.as_mut() {
            t.cumulative = figure;
            t.annualized = Some(other);
            t.method = text.clone();
        }
        s.performance.flows[0].value = Some(figure);
        s.provenance.runs[0].connection = text;
        prop_assert!(render_pdf(&s).is_ok());
        prop_assert!(render_csv_zip(&s).is_ok());
    }
}
