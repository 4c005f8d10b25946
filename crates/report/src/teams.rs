//! Cost by team: each variant's projected $/month split by the teams' measured traffic, as the
//! HTML and Markdown reports show it.

use crate::record::RunRecord;

/// The variants whose projection splits cost by team, and every team any of them names (sorted).
pub struct TeamCosts<'a> {
    pub teams: Vec<&'a str>,
    pub rows: Vec<(&'a RunRecord, &'a [(String, f64)])>,
}

impl<'a> TeamCosts<'a> {
    /// `None` when no record's scenario has teams.
    pub fn of(records: &'a [RunRecord]) -> Option<Self> {
        let rows: Vec<(&RunRecord, &[(String, f64)])> = records
            .iter()
            .filter_map(|r| r.projection.as_ref().map(|p| (r, p.compressed.cost_by_team.as_slice())))
            .filter(|(_, t)| !t.is_empty())
            .collect();
        if rows.is_empty() {
            return None;
        }
        let mut teams: Vec<&str> = rows.iter().flat_map(|(_, t)| t.iter().map(|(n, _)| n.as_str())).collect();
        teams.sort_unstable();
        teams.dedup();
        Some(TeamCosts { teams, rows })
    }

    /// A team's $/month in a row, `None` when that variant's scenario does not name it.
    pub fn cell(row: &[(String, f64)], team: &str) -> Option<f64> {
        row.iter().find(|(n, _)| n == team).map(|(_, v)| *v)
    }
}

/// What the split means, for both reports.
pub const TEAM_NOTE: &str =
    "Each variant's projected $/month split by the teams' measured traffic (requests × tokens), not headcount.";
