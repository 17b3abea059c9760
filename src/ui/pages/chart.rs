//! A key's usage as a small bar chart: inline SVG drawn on the server, one bar a day (uses,
//! with the refusals stacked on top), colours from the stylesheet's variables so it follows
//! dark mode, and a width that follows the page (a phone included). No script.

use maud::{Markup, html};

use crate::domain::{Outcome, Timestamp, UsageCounts};

/// The drawing's own units: the SVG scales them to the width of the card.
const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 80.0;

fn refused(c: &UsageCounts) -> i64 {
    Outcome::ALL
        .iter()
        .filter(|o| **o != Outcome::Valid)
        .map(|o| c.get(*o))
        .sum()
}

/// The day a bucket starts, as people read it: `2026-11-03`.
fn day(t: Timestamp) -> String {
    t.rfc3339().chars().take(10).collect()
}

/// The chart of `days` (oldest first), with its totals in words for those who cannot see it.
pub fn usage_chart(days: &[(Timestamp, UsageCounts)]) -> Markup {
    let valid: i64 = days.iter().map(|(_, c)| c.get(Outcome::Valid).max(0)).sum();
    let refusals: i64 = days.iter().map(|(_, c)| refused(c).max(0)).sum();
    let peak = days
        .iter()
        .map(|(_, c)| c.get(Outcome::Valid).max(0) + refused(c).max(0))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = WIDTH / days.len().max(1) as f64;
    let scale = |n: i64| n as f64 * HEIGHT / peak as f64;
    let uses = if valid == 1 { "use" } else { "uses" };
    let summary = format!("{valid} {uses} and {refusals} refused in the last {} days", days.len());
    html! {
        figure.usage id="usage" {
            svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } preserveAspectRatio="none" role="img" aria-label=(summary) {
                line.axis x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) {}
                @for (i, (start, c)) in days.iter().enumerate() {
                    @let ok = scale(c.get(Outcome::Valid).max(0));
                    @let no = scale(refused(c).max(0));
                    @let x = i as f64 * slot + slot * 0.1;
                    @let w = slot * 0.8;
                    g {
                        title { (day(*start)) ": " (c.get(Outcome::Valid)) " uses, " (refused(c)) " refused" }
                        // An invisible full-height bar: the day's title shows wherever it is pointed at.
                        rect.hit x=(format!("{:.2}", i as f64 * slot)) y="0" width=(format!("{slot:.2}")) height=(HEIGHT) {}
                        @if ok > 0.0 {
                            rect.valid x=(format!("{x:.2}")) y=(format!("{:.2}", HEIGHT - ok)) width=(format!("{w:.2}")) height=(format!("{ok:.2}")) {}
                        }
                        @if no > 0.0 {
                            rect.refused x=(format!("{x:.2}")) y=(format!("{:.2}", HEIGHT - ok - no)) width=(format!("{w:.2}")) height=(format!("{no:.2}")) {}
                        }
                    }
                }
            }
            figcaption {
                span.legend.valid { "uses" } " "
                span.legend.refused { "refused" } " · "
                (summary) "; busiest day " (peak) "."
                @if let (Some((first, _)), Some((last, _))) = (days.first(), days.last()) {
                    " " span.muted { (day(*first)) " to " (day(*last)) " (UTC)" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(counts: &[(i64, i64)]) -> Vec<(Timestamp, UsageCounts)> {
        counts
            .iter()
            .enumerate()
            .map(|(i, (ok, no))| {
                let mut c = UsageCounts::one(Outcome::Valid, *ok);
                c.add(&UsageCounts::one(Outcome::RateLimited, *no));
                (Timestamp::from_millis(i as i64 * 86_400_000), c)
            })
            .collect()
    }

    #[test]
    fn bars_scale_to_the_busiest_day_and_refusals_stack_on_top() {
        let html = usage_chart(&days(&[(0, 0), (10, 0), (15, 5)])).into_string();
        assert!(html.contains("25 uses and 5 refused in the last 3 days"), "{html}");
        // The busiest day (20) is full height; the 10-use day half of it.
        assert!(
            html.contains(r#"class="valid" x="210.00" y="20.00" width="80.00" height="60.00""#),
            "{html}"
        );
        assert!(
            html.contains(r#"class="refused" x="210.00" y="0.00" width="80.00" height="20.00""#),
            "{html}"
        );
        assert!(
            html.contains(r#"x="110.00" y="40.00" width="80.00" height="40.00""#),
            "{html}"
        );
        assert_eq!(html.matches(r#"class="valid""#).count(), 2, "an empty day has no bar");
        assert!(html.contains("<title>1970-01-02: 10 uses, 0 refused</title>"), "{html}");
    }

    #[test]
    fn a_key_never_used_draws_an_empty_chart() {
        let html = usage_chart(&days(&[(0, 0); 30])).into_string();
        assert!(html.contains("0 uses and 0 refused in the last 30 days"));
        assert!(!html.contains(r#"class="valid""#));
    }
}
