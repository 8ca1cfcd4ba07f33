//! The tone-string parser. Every refusal names the item and what is wrong with it.

use super::{LevelRamp, Repeat, ToneProgram, ToneStep, MAX_FREQUENCIES};
use crate::frame::SAMPLE_RATE;

/// Why a tone string was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ToneErrorKind {
    /// The string holds nothing.
    #[error("the tone string is empty")]
    Empty,
    /// Only settings, or only zero-length tones.
    #[error("the tone string plays nothing")]
    PlaysNothing,
    /// `%(` without `)`, or the like.
    #[error("unbalanced parentheses")]
    UnbalancedParentheses,
    /// A field that should be a number is not.
    #[error("the {what} `{text}` is not a number")]
    NotANumber {
        /// Which field.
        what: &'static str,
        /// What it held.
        text: String,
    },
    /// A number outside what the field allows.
    #[error("the {what} {value} is outside {min}..={max}")]
    OutOfRange {
        /// Which field.
        what: &'static str,
        /// The value given.
        value: f64,
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// `%(on,off)` with no frequency.
    #[error("a tone needs at least one frequency after its on and off durations")]
    MissingFrequency,
    /// More frequencies than one tone mixes.
    #[error("{count} frequencies, at most {MAX_FREQUENCIES} can sound together")]
    TooManyFrequencies {
        /// How many were given.
        count: usize,
    },
    /// A DTMF digit's `(on,off)` with another number of fields.
    #[error("a DTMF duration takes exactly two fields (on,off), found {found}")]
    DtmfDurationArity {
        /// How many fields were given.
        found: usize,
    },
    /// A `name=value` setting tutti does not know.
    #[error("unknown setting `{name}` (known: v, d, w, l, L, loops, >, <, +, r, c)")]
    UnknownSetting {
        /// The name given.
        name: String,
    },
    /// A character that starts no tone.
    #[error("unexpected `{found}`: a tone is `%(on,off,freq…)` or a DTMF digit")]
    UnexpectedCharacter {
        /// The character.
        found: char,
    },
    /// `path=…` (a TTML tone file) is not supported.
    #[error("tone files (`path=`) are not supported; give the tones inline")]
    ToneFileUnsupported,
    /// Too many items for one script.
    #[error("more than {limit} items")]
    TooLong {
        /// The limit.
        limit: usize,
    },
}

/// A refused tone string: which item (1-based, among `;`-separated items), its text, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("tone string item {item} `{text}`: {kind}")]
pub struct ToneError {
    /// 1-based position of the offending item (0 when the whole string is at fault).
    pub item: usize,
    /// The offending item.
    pub text: String,
    /// What is wrong.
    pub kind: ToneErrorKind,
}

const PREFIX: &str = "tone_stream://";
const MAX_ITEMS: usize = 1024;
const MAX_DURATION_MS: f64 = 600_000.0;
const MAX_LOOPS: f64 = 1_000_000.0;
const MIN_LEVEL_DB: f64 = -63.0;
const MAX_LEVEL_DB: f64 = 0.0;
const SAMPLES_PER_MS: f64 = SAMPLE_RATE as f64 / 1000.0;

fn dtmf_frequencies(digit: char) -> Option<[f32; 2]> {
    let row = match digit.to_ascii_uppercase() {
        '1' | '2' | '3' | 'A' => 697.0,
        '4' | '5' | '6' | 'B' => 770.0,
        '7' | '8' | '9' | 'C' => 852.0,
        '*' | '0' | '#' | 'D' => 941.0,
        _ => return None,
    };
    let column = match digit.to_ascii_uppercase() {
        '1' | '4' | '7' | '*' => 1209.0,
        '2' | '5' | '8' | '0' => 1336.0,
        '3' | '6' | '9' | '#' => 1477.0,
        _ => 1633.0,
    };
    Some([row, column])
}

/// Settings in force while the script is read, in order.
struct State {
    level_db: f32,
    dtmf_on_ms: f64,
    dtmf_off_ms: f64,
    repeats: u32,
    ramp_every_ms: f64,
    ramp_direction: f32,
    ramp_step_db: f32,
}

impl State {
    fn ramp(&self) -> Option<LevelRamp> {
        let every = (self.ramp_every_ms * SAMPLES_PER_MS).round() as u32;
        (self.ramp_direction != 0.0 && every > 0).then_some(LevelRamp {
            every_samples: every,
            step_db: self.ramp_direction * self.ramp_step_db,
        })
    }

    fn step(&self, on_ms: f64, off_ms: f64, frequencies: Vec<f32>) -> ToneStep {
        ToneStep {
            on_samples: (on_ms * SAMPLES_PER_MS).round() as u32,
            off_samples: (off_ms * SAMPLES_PER_MS).round() as u32,
            frequencies,
            level_db: self.level_db,
            ramp: self.ramp(),
            repeats: self.repeats,
        }
    }
}

pub(super) fn parse(text: &str) -> Result<ToneProgram, ToneError> {
    let whole = |kind| ToneError {
        item: 0,
        text: text.to_owned(),
        kind,
    };
    let trimmed = text.trim();
    let script = if trimmed.len() >= PREFIX.len()
        && trimmed.is_char_boundary(PREFIX.len())
        && trimmed[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
    {
        &trimmed[PREFIX.len()..]
    } else {
        trimmed
    };
    if script.trim().is_empty() {
        return Err(whole(ToneErrorKind::Empty));
    }
    let mut state = State {
        level_db: -7.0,
        dtmf_on_ms: 250.0,
        dtmf_off_ms: 62.5,
        repeats: 1,
        ramp_every_ms: 0.0,
        ramp_direction: 0.0,
        ramp_step_db: 1.0,
    };
    let mut steps = Vec::new();
    let mut repeat = Repeat::Times(1);
    for (position, item) in script.split(';').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if position >= MAX_ITEMS {
            return Err(whole(ToneErrorKind::TooLong { limit: MAX_ITEMS }));
        }
        let fail = |kind| ToneError {
            item: position + 1,
            text: item.to_owned(),
            kind,
        };
        if let Some((name, value)) = item.split_once('=') {
            apply_setting(&mut state, &mut repeat, name.trim(), value.trim()).map_err(fail)?;
        } else {
            parse_tones(&state, item, &mut steps).map_err(fail)?;
        }
    }
    let pass_samples: u64 = steps.iter().map(ToneStep::total_samples).sum();
    if pass_samples == 0 {
        return Err(whole(ToneErrorKind::PlaysNothing));
    }
    Ok(ToneProgram { steps, repeat })
}

fn number(what: &'static str, text: &str, min: f64, max: f64) -> Result<f64, ToneErrorKind> {
    let value: f64 = text.trim().parse().map_err(|_| ToneErrorKind::NotANumber {
        what,
        text: text.trim().to_owned(),
    })?;
    if !value.is_finite() || value < min || value > max {
        return Err(ToneErrorKind::OutOfRange {
            what,
            value,
            min,
            max,
        });
    }
    Ok(value)
}

fn loops(text: &str) -> Result<Repeat, ToneErrorKind> {
    let value = number("loop count", text, -1.0, MAX_LOOPS)?;
    if value.fract() != 0.0 || value == 0.0 {
        return Err(ToneErrorKind::OutOfRange {
            what: "loop count (a whole number, -1 for endless)",
            value,
            min: -1.0,
            max: MAX_LOOPS,
        });
    }
    Ok(if value < 0.0 {
        Repeat::Forever
    } else {
        Repeat::Times(value as u32)
    })
}

fn apply_setting(
    state: &mut State,
    repeat: &mut Repeat,
    name: &str,
    value: &str,
) -> Result<(), ToneErrorKind> {
    match name {
        "v" => state.level_db = number("level (dB)", value, MIN_LEVEL_DB, MAX_LEVEL_DB)? as f32,
        "d" => state.dtmf_on_ms = number("default duration (ms)", value, 0.0, MAX_DURATION_MS)?,
        "w" => state.dtmf_off_ms = number("default wait (ms)", value, 0.0, MAX_DURATION_MS)?,
        "l" => {
            state.repeats = match loops(value)? {
                Repeat::Times(n) => n,
                Repeat::Forever => {
                    return Err(ToneErrorKind::OutOfRange {
                        what: "per-tone loop count",
                        value: -1.0,
                        min: 1.0,
                        max: MAX_LOOPS,
                    })
                }
            }
        }
        "L" | "loops" => *repeat = loops(value)?,
        ">" | "<" => {
            state.ramp_every_ms = number("level step interval (ms)", value, 0.0, MAX_DURATION_MS)?;
            state.ramp_direction = if name == ">" { -1.0 } else { 1.0 };
        }
        "+" => state.ramp_step_db = number("level step (dB)", value, 0.0, 63.0)? as f32,
        "r" => {
            number("sample rate", value, 8000.0, 192_000.0)?;
        }
        "c" => {
            number("channel count", value, 1.0, 8.0)?;
        }
        "path" => return Err(ToneErrorKind::ToneFileUnsupported),
        _ => {
            return Err(ToneErrorKind::UnknownSetting {
                name: name.to_owned(),
            })
        }
    }
    Ok(())
}

/// Parses one item of tones: `%(…)` and DTMF digits, possibly several in a row.
fn parse_tones(state: &State, item: &str, steps: &mut Vec<ToneStep>) -> Result<(), ToneErrorKind> {
    let mut rest = item;
    while let Some(first) = rest.chars().next() {
        if first.is_whitespace() {
            rest = &rest[first.len_utf8()..];
            continue;
        }
        let after = &rest[first.len_utf8()..];
        let (arguments, remainder) = match after.strip_prefix('(') {
            Some(open) => {
                let close = open.find(')').ok_or(ToneErrorKind::UnbalancedParentheses)?;
                (Some(&open[..close]), &open[close + 1..])
            }
            None => (None, after),
        };
        if first == '%' {
            let arguments = arguments.ok_or(ToneErrorKind::UnbalancedParentheses)?;
            steps.push(manual_tone(state, arguments)?);
        } else if let Some(frequencies) = dtmf_frequencies(first) {
            let (on_ms, off_ms) = match arguments {
                None => (state.dtmf_on_ms, state.dtmf_off_ms),
                Some(arguments) => {
                    let fields: Vec<&str> = arguments.split(',').collect();
                    if fields.len() != 2 {
                        return Err(ToneErrorKind::DtmfDurationArity {
                            found: fields.len(),
                        });
                    }
                    (
                        number("on duration (ms)", fields[0], 0.0, MAX_DURATION_MS)?,
                        number("off duration (ms)", fields[1], 0.0, MAX_DURATION_MS)?,
                    )
                }
            };
            steps.push(state.step(on_ms, off_ms, frequencies.to_vec()));
        } else if first == '(' || first == ')' {
            return Err(ToneErrorKind::UnbalancedParentheses);
        } else {
            return Err(ToneErrorKind::UnexpectedCharacter { found: first });
        }
        rest = remainder;
    }
    Ok(())
}

fn manual_tone(state: &State, arguments: &str) -> Result<ToneStep, ToneErrorKind> {
    let fields: Vec<&str> = arguments.split(',').collect();
    if fields.len() < 3 {
        return Err(ToneErrorKind::MissingFrequency);
    }
    let on_ms = number("on duration (ms)", fields[0], 0.0, MAX_DURATION_MS)?;
    let off_ms = number("off duration (ms)", fields[1], 0.0, MAX_DURATION_MS)?;
    let nyquist = f64::from(SAMPLE_RATE) / 2.0;
    let mut frequencies = Vec::with_capacity(fields.len() - 2);
    for field in &fields[2..] {
        let hz = number("frequency (Hz)", field, 0.0, nyquist - 1.0)?;
        if hz > 0.0 {
            frequencies.push(hz as f32);
        }
    }
    if fields.len() - 2 > MAX_FREQUENCIES {
        return Err(ToneErrorKind::TooManyFrequencies {
            count: fields.len() - 2,
        });
    }
    Ok(state.step(on_ms, off_ms, frequencies))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind(text: &str) -> ToneErrorKind {
        parse(text).expect_err(text).kind
    }

    #[test]
    fn accepts_the_standard_forms() {
        let program = parse("tone_stream://%(200,0,500,600,700)").unwrap();
        assert_eq!(program.steps()[0].frequencies, vec![500.0, 600.0, 700.0]);
        assert_eq!(program.steps()[0].on_samples, 200 * 48);

        let uk_ring = parse("%(400,200,400,450);%(400,2000,400,450)").unwrap();
        assert_eq!(uk_ring.steps().len(), 2);
        assert_eq!(uk_ring.steps()[1].off_samples, 2000 * 48);

        let stutter = parse("tone_stream://L=100;%(100,100,350,440)").unwrap();
        assert_eq!(stutter.repeat(), Repeat::Times(100));

        let endless = parse("tone_stream://%(100,15000,800);loops=-1").unwrap();
        assert_eq!(endless.repeat(), Repeat::Forever);
        assert_eq!(endless.duration(), None);

        let bong = parse("v=-7;>=2;+=.1;%(100,0,941.0,1477.0);v=-7;>=0;%(1400,0,350,440)").unwrap();
        assert_eq!(bong.steps()[0].frequencies, vec![941.0, 1477.0]);
        let ramp = bong.steps()[0].ramp.unwrap();
        assert_eq!(ramp.every_samples, 96);
        assert!((ramp.step_db + 0.1).abs() < 1e-6);
        assert_eq!(bong.steps()[1].ramp, None);

        let digits = parse("v=-10; 1(100,50) 2 #").unwrap();
        assert_eq!(digits.steps().len(), 3);
        assert_eq!(digits.steps()[0].frequencies, vec![697.0, 1209.0]);
        assert_eq!(digits.steps()[1].on_samples, 250 * 48);
        assert_eq!(digits.steps()[2].frequencies, vec![941.0, 1477.0]);
        assert_eq!(digits.steps()[0].level_db, -10.0);

        let sit = parse("%(274,0,913.8);%(274,0,1370.6);%(380,0,1776.7);").unwrap();
        assert_eq!(sit.steps().len(), 3);

        let spaced = parse("  TONE_STREAM://%( 100 , 50 , 440 ) ; l=3 ; %(10,0,0)").unwrap();
        assert_eq!(spaced.steps()[1].frequencies, Vec::<f32>::new());
        assert_eq!(spaced.steps()[1].repeats, 3);
    }

    #[test]
    fn rejects_garbage_and_says_why() {
        assert_eq!(kind(""), ToneErrorKind::Empty);
        assert_eq!(kind("tone_stream://"), ToneErrorKind::Empty);
        assert_eq!(kind("v=-7"), ToneErrorKind::PlaysNothing);
        assert_eq!(kind("%(0,0,440)"), ToneErrorKind::PlaysNothing);
        assert_eq!(kind("%(100,0,440"), ToneErrorKind::UnbalancedParentheses);
        assert_eq!(kind("%(100,0)"), ToneErrorKind::MissingFrequency);
        assert_eq!(
            kind("x=3;%(1,1,1)"),
            ToneErrorKind::UnknownSetting { name: "x".into() }
        );
        assert_eq!(
            kind("hello"),
            ToneErrorKind::UnexpectedCharacter { found: 'h' }
        );
        assert_eq!(kind("path=/tmp/x.ttml"), ToneErrorKind::ToneFileUnsupported);
        assert_eq!(
            kind("1(100)"),
            ToneErrorKind::DtmfDurationArity { found: 1 }
        );
        assert!(matches!(
            kind("%(abc,0,440)"),
            ToneErrorKind::NotANumber {
                what: "on duration (ms)",
                ..
            }
        ));
        assert!(matches!(
            kind("%(100,0,30000)"),
            ToneErrorKind::OutOfRange {
                what: "frequency (Hz)",
                ..
            }
        ));
        assert!(matches!(
            kind("%(-5,0,440)"),
            ToneErrorKind::OutOfRange { .. }
        ));
        assert!(matches!(
            kind("v=10;%(100,0,440)"),
            ToneErrorKind::OutOfRange {
                what: "level (dB)",
                ..
            }
        ));
        assert!(matches!(
            kind("L=0;%(100,0,440)"),
            ToneErrorKind::OutOfRange { .. }
        ));
        assert!(matches!(
            kind("%(100,0,nan)"),
            ToneErrorKind::OutOfRange { .. }
        ));
        let many = format!("%(100,0{})", ",440".repeat(19));
        assert_eq!(kind(&many), ToneErrorKind::TooManyFrequencies { count: 19 });
    }

    #[test]
    fn errors_name_the_item() {
        let error = parse("%(100,0,440);%(100,x,440)").unwrap_err();
        assert_eq!(error.item, 2);
        assert_eq!(
            error.to_string(),
            "tone string item 2 `%(100,x,440)`: the off duration (ms) `x` is not a number"
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_tone_like_text(text in "[%()0-9,;.=vLl<>+#*a-dA-D -]{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn well_formed_tones_round_trip(on in 1u32..5000, off in 0u32..5000, f1 in 1u32..20000, f2 in 1u32..20000) {
            let program = parse(&format!("%({on},{off},{f1},{f2})")).unwrap();
            prop_assert_eq!(program.steps()[0].on_samples, on * 48);
            prop_assert_eq!(program.steps()[0].off_samples, off * 48);
            prop_assert_eq!(&program.steps()[0].frequencies, &vec![f1 as f32, f2 as f32]);
        }
    }
}
