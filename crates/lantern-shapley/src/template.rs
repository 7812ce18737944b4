//! Prompt templates whose inline-marked components are the players.
//!
//! # Syntax
//!
//! A template is plain text. A *component* (player) is marked inline as
//!
//! ```text
//! {{name: text}}
//! {{name: text | filler: replacement}}
//! ```
//!
//! * `{{` opens and `}}` closes a marker; markers cannot nest. A single `{` or
//!   `}` is ordinary text, but `{{` / `}}` are reserved (there is no escape).
//! * `name` is everything before the first `:`, with surrounding whitespace
//!   trimmed. It must be non-empty, unique in the template, and consist of
//!   letters, digits, `_`, `-` or `.`.
//! * The component's text starts right after the colon; **exactly one**
//!   optional space (U+0020) directly after the colon is syntax and dropped.
//!   Everything else (further spaces, newlines, trailing spaces) is kept
//!   verbatim: `{{x:foo}}` and `{{x: foo}}` both give `"foo"`, `{{x:  foo }}`
//!   gives `" foo "`.
//! * An optional filler follows a `|` that is followed (after optional spaces
//!   or tabs) by `filler:`. One optional space before the `|` and one after
//!   `filler:` are syntax and dropped. A `|` not followed by `filler:` is
//!   ordinary text. The filler may be empty.
//! * Text outside markers is fixed: it appears in every coalition's prompt.
//!
//! # Absent components
//!
//! A coalition's prompt keeps the text of present components (without braces
//! or name). Absent components are handled by [`Absent`]:
//!
//! * [`Absent::Remove`] deletes exactly the marked span and changes nothing
//!   else, so `"A {{x: foo}} B"` without `x` renders as `"A  B"` (two spaces).
//!   Put separators inside the span to remove them with it:
//!   `"A {{x: foo }}B"` renders as `"A foo B"` or `"A B"`.
//! * [`Absent::Filler`] substitutes the component's filler text (an error if a
//!   component has none), keeping prompt length and grammar closer to the
//!   original, as suggested by Mohammadi (2024).
//!
//! ```
//! use lantern_shapley::{Absent, Coalition, Template};
//! let t = Template::parse(
//!     "Q: {{price: The flight costs $400. | filler: The flight has a price.}} \
//!      {{time:It leaves at 6am. }}Should I book it? A:",
//! ).unwrap();
//! assert_eq!(t.player_names(), vec!["price", "time"]);
//! assert_eq!(t.shared_prefix(), "Q: ");
//! let only_time = Coalition::empty().with(1);
//! assert_eq!(
//!     t.render(only_time, Absent::Remove).unwrap(),
//!     "Q:  It leaves at 6am. Should I book it? A:"
//! );
//! assert_eq!(
//!     t.render(Coalition::empty(), Absent::Filler).unwrap_err().to_string(),
//!     "component `time` has no filler text; write `{{time: text | filler: replacement}}` \
//!      or use absent mode `remove`"
//! );
//! ```

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::coalition::{Coalition, MAX_PLAYERS};
use crate::error::{Result, ShapleyError};

/// How absent components are rendered in a coalition's prompt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Absent {
    /// Delete the marked span exactly; nothing else in the text changes.
    #[default]
    Remove,
    /// Substitute the component's filler text.
    Filler,
}

impl FromStr for Absent {
    type Err = ShapleyError;
    /// Parses `remove` or `filler` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "remove" => Ok(Absent::Remove),
            "filler" => Ok(Absent::Filler),
            _ => Err(ShapleyError::UnknownAbsentMode(s.to_string())),
        }
    }
}

impl fmt::Display for Absent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Absent::Remove => "remove",
            Absent::Filler => "filler",
        })
    }
}

/// One marked prompt component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Player {
    /// Unique name (the text before the colon).
    pub name: String,
    /// The component's text when present.
    pub text: String,
    /// Replacement text used by [`Absent::Filler`] when absent.
    pub filler: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Fixed(String),
    Player(usize),
}

/// A parsed prompt template. See the [module docs](self) for the syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
    players: Vec<Player>,
    prefix: String,
}

impl Template {
    /// Parses a template; errors carry the line and column of the problem.
    pub fn parse(src: &str) -> Result<Self> {
        let err = |offset: usize, message: String| parse_error(src, offset, message);
        let mut segments = Vec::new();
        let mut players: Vec<(Player, usize)> = Vec::new();
        let mut fixed = String::new();
        let mut pos = 0;
        while pos < src.len() {
            let rest = &src[pos..];
            let open = rest.find("{{").map(|i| pos + i);
            let close = rest.find("}}").map(|i| pos + i);
            let open = match (open, close) {
                (None, None) => break,
                (Some(o), Some(c)) if c < o => {
                    return Err(err(c, "`}}` without a matching `{{`".into()))
                }
                (None, Some(c)) => return Err(err(c, "`}}` without a matching `{{`".into())),
                (Some(o), _) => o,
            };
            fixed.push_str(&src[pos..open]);
            let body_start = open + 2;
            let body_len = src[body_start..]
                .find("}}")
                .ok_or_else(|| err(open, "unclosed `{{`: no matching `}}` follows".into()))?;
            let body_end = body_start + body_len;
            if let Some(nested) = src[body_start..body_end].find("{{") {
                return Err(err(
                    body_start + nested,
                    "nested `{{` inside a component marker (markers cannot nest)".into(),
                ));
            }
            let player = parse_body(src, body_start, body_end)?;
            if let Some((_, first)) = players.iter().find(|(p, _)| p.name == player.name) {
                let (l, c) = line_col(src, *first);
                return Err(err(
                    open,
                    format!(
                        "duplicate player name `{}` (first defined at line {l}, column {c})",
                        player.name
                    ),
                ));
            }
            if !fixed.is_empty() {
                segments.push(Segment::Fixed(std::mem::take(&mut fixed)));
            }
            segments.push(Segment::Player(players.len()));
            players.push((player, open));
            pos = body_end + 2;
        }
        fixed.push_str(&src[pos.min(src.len())..]);
        if !fixed.is_empty() {
            segments.push(Segment::Fixed(fixed));
        }
        if players.is_empty() {
            return Err(ShapleyError::NoPlayers);
        }
        if players.len() > MAX_PLAYERS {
            return Err(ShapleyError::TooManyPlayers {
                n: players.len(),
                max: MAX_PLAYERS,
            });
        }
        let prefix = match segments.first() {
            Some(Segment::Fixed(s)) => s.clone(),
            _ => String::new(),
        };
        Ok(Template {
            segments,
            players: players.into_iter().map(|(p, _)| p).collect(),
            prefix,
        })
    }

    /// Reads and parses a plain-text template file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|source| ShapleyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Template::parse(&src)
    }

    /// The components, in order of appearance (player `i` is `players()[i]`).
    pub fn players(&self) -> &[Player] {
        &self.players
    }

    /// Number of components.
    pub fn n_players(&self) -> usize {
        self.players.len()
    }

    /// Component names, in order.
    pub fn player_names(&self) -> Vec<String> {
        self.players.iter().map(|p| p.name.clone()).collect()
    }

    /// Fixed text before the first component: identical in every coalition's
    /// prompt (in both absent modes), so a scorer may encode it once.
    pub fn shared_prefix(&self) -> &str {
        &self.prefix
    }

    /// Sets (or replaces) the filler of the component called `name`.
    pub fn set_filler(&mut self, name: &str, filler: impl Into<String>) -> Result<()> {
        let p = self
            .players
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| ShapleyError::UnknownPlayer(name.to_string()))?;
        p.filler = Some(filler.into());
        Ok(())
    }

    /// Errors with [`ShapleyError::MissingFiller`] if `absent` is
    /// [`Absent::Filler`] and some component has no filler.
    pub fn check_absent_mode(&self, absent: Absent) -> Result<()> {
        if absent == Absent::Filler {
            if let Some(p) = self.players.iter().find(|p| p.filler.is_none()) {
                return Err(ShapleyError::MissingFiller {
                    player: p.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// The prompt of a coalition: present components keep their text, absent
    /// ones are removed or replaced by their filler. Players outside the
    /// template are ignored.
    pub fn render(&self, coalition: Coalition, absent: Absent) -> Result<String> {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Fixed(s) => out.push_str(s),
                Segment::Player(i) => {
                    let p = &self.players[*i];
                    if coalition.contains(*i) {
                        out.push_str(&p.text);
                    } else if absent == Absent::Filler {
                        let f = p
                            .filler
                            .as_deref()
                            .ok_or_else(|| ShapleyError::MissingFiller {
                                player: p.name.clone(),
                            })?;
                        out.push_str(f);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Parses `name: text [| filler: replacement]` located at `src[start..end]`.
fn parse_body(src: &str, start: usize, end: usize) -> Result<Player> {
    let body = &src[start..end];
    let colon = body.find(':').ok_or_else(|| {
        parse_error(
            src,
            start,
            "component marker needs the form `{{name: text}}` (no `:` found)".into(),
        )
    })?;
    let raw_name = &body[..colon];
    let name = raw_name.trim();
    if name.is_empty() {
        return Err(parse_error(src, start, "empty player name".into()));
    }
    if let Some((i, ch)) = name
        .char_indices()
        .find(|&(_, ch)| !(ch.is_alphanumeric() || matches!(ch, '_' | '-' | '.')))
    {
        let lead = raw_name.len() - raw_name.trim_start().len();
        return Err(parse_error(
            src,
            start + lead + i,
            format!(
                "invalid character {ch:?} in player name `{name}` \
                 (use letters, digits, `_`, `-` or `.`)"
            ),
        ));
    }
    let after = &body[colon + 1..];
    let after = after.strip_prefix(' ').unwrap_or(after);
    let (text, filler) = match find_filler_separator(after) {
        Some((bar, filler_start)) => {
            let text = &after[..bar];
            let text = text.strip_suffix(' ').unwrap_or(text);
            let filler = &after[filler_start..];
            let filler = filler.strip_prefix(' ').unwrap_or(filler);
            (text, Some(filler.to_string()))
        }
        None => (after, None),
    };
    Ok(Player {
        name: name.to_string(),
        text: text.to_string(),
        filler,
    })
}

/// Finds `|` + optional spaces/tabs + `filler:`; returns the byte index of
/// the `|` and of the first byte after `filler:`.
fn find_filler_separator(s: &str) -> Option<(usize, usize)> {
    const KEY: &str = "filler:";
    s.match_indices('|').find_map(|(bar, _)| {
        let rest = &s[bar + 1..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        let key_at = bar + 1 + (rest.len() - trimmed.len());
        trimmed
            .starts_with(KEY)
            .then_some((bar, key_at + KEY.len()))
    })
}

fn parse_error(src: &str, offset: usize, message: String) -> ShapleyError {
    let (line, column) = line_col(src, offset);
    ShapleyError::TemplateParse {
        line,
        column,
        offset,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(src: &str) -> (usize, usize, String) {
        match Template::parse(src) {
            Err(ShapleyError::TemplateParse {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected parse error, got {other:?}"),
        }
    }

    #[test]
    fn exact_removal_and_presence() {
        let t = Template::parse("A {{x: foo}} B").unwrap();
        assert_eq!(
            t.render(Coalition::empty(), Absent::Remove).unwrap(),
            "A  B"
        );
        assert_eq!(
            t.render(Coalition::full(1), Absent::Remove).unwrap(),
            "A foo B"
        );
        let t = Template::parse("A {{x: foo }}B").unwrap();
        assert_eq!(t.render(Coalition::empty(), Absent::Remove).unwrap(), "A B");
        assert_eq!(
            t.render(Coalition::full(1), Absent::Remove).unwrap(),
            "A foo B"
        );
    }

    #[test]
    fn colon_space_rule() {
        let t = Template::parse("{{a:foo}}{{b: foo}}{{c:  foo }}{{d:\nfoo}}").unwrap();
        let texts: Vec<_> = t.players().iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, vec!["foo", "foo", " foo ", "\nfoo"]);
        assert_eq!(t.shared_prefix(), "");
    }

    #[test]
    fn fillers() {
        let t = Template::parse(
            "X {{p: The flight costs $400. | filler: The flight has a price.}} Y \
             {{q: a|filler:b}}{{r: c |  filler:  d }}{{s: e | f}}{{u: g | filler:}}",
        )
        .unwrap();
        let p = t.players();
        assert_eq!(p[0].text, "The flight costs $400.");
        assert_eq!(p[0].filler.as_deref(), Some("The flight has a price."));
        assert_eq!(
            (p[1].text.as_str(), p[1].filler.as_deref()),
            ("a", Some("b"))
        );
        assert_eq!(
            (p[2].text.as_str(), p[2].filler.as_deref()),
            ("c", Some(" d "))
        );
        assert_eq!(
            (p[3].text.as_str(), p[3].filler.as_deref()),
            ("e | f", None)
        );
        assert_eq!(
            (p[4].text.as_str(), p[4].filler.as_deref()),
            ("g", Some(""))
        );
        assert!(t.check_absent_mode(Absent::Filler).is_err());
        let mut t = t;
        t.set_filler("s", "E").unwrap();
        assert!(t.set_filler("zz", "E").is_err());
        t.check_absent_mode(Absent::Filler).unwrap();
        assert_eq!(
            t.render(Coalition::from_bits(0b00010), Absent::Filler)
                .unwrap(),
            "X The flight has a price. Y a d E"
        );
    }

    #[test]
    fn parse_errors_have_positions() {
        assert!(matches!(
            Template::parse("no players here"),
            Err(ShapleyError::NoPlayers)
        ));
        assert!(matches!(Template::parse(""), Err(ShapleyError::NoPlayers)));
        let (l, c, m) = parse_err("ab\ncd {{x: foo");
        assert_eq!((l, c), (2, 4));
        assert!(m.contains("unclosed"), "{m}");
        let (l, c, m) = parse_err("ab }} {{x: y}}");
        assert_eq!((l, c), (1, 4));
        assert!(m.contains("without a matching"), "{m}");
        let (_, c, m) = parse_err("{{x: a {{y: b}} }}");
        assert_eq!(c, 8);
        assert!(m.contains("nested"), "{m}");
        let (_, c, m) = parse_err("{{x: a}} {{ x : b}}");
        assert_eq!(c, 10);
        assert!(
            m.contains("duplicate player name `x`") && m.contains("column 1"),
            "{m}"
        );
        let (_, _, m) = parse_err("{{ : b}}");
        assert!(m.contains("empty player name"), "{m}");
        let (_, _, m) = parse_err("{{abc}}");
        assert!(m.contains("no `:`"), "{m}");
        let (_, c, m) = parse_err("{{a b: c}}");
        assert_eq!(c, 4);
        assert!(m.contains("invalid character"), "{m}");
        let msg = Template::parse("x\n {{a: b").unwrap_err().to_string();
        assert!(
            msg.starts_with("template parse error at line 2, column 2"),
            "{msg}"
        );
    }

    #[test]
    fn absent_from_str() {
        assert_eq!("Filler".parse::<Absent>().unwrap(), Absent::Filler);
        assert_eq!("remove".parse::<Absent>().unwrap(), Absent::Remove);
        assert!("drop".parse::<Absent>().is_err());
    }

    #[test]
    fn too_many_players() {
        let src: String = (0..64).map(|i| format!("{{{{p{i}: x}}}}")).collect();
        assert!(matches!(
            Template::parse(&src),
            Err(ShapleyError::TooManyPlayers { n: 64, .. })
        ));
    }

    #[test]
    fn file_errors() {
        let e = Template::from_file("/nonexistent/lantern/template.txt").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/lantern/template.txt"));
    }
}
