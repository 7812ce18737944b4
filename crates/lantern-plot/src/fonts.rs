//! The fonts every figure is drawn with, embedded in the binary: DejaVu Sans regular and bold
//! (Bitstream Vera licence, see `fonts/LICENSE`). Embedding them (plotters' `ab_glyph` feature)
//! instead of asking the system (the `ttf` feature: fontconfig + FreeType) means the workspace
//! builds with no system packages and a figure is the same on every machine.

use std::sync::Once;

use plotters::style::{register_font, FontStyle};

static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// The family name the canvas asks for (`FontFamily::SansSerif` is looked up as "sans-serif").
const FAMILY: &str = "sans-serif";

/// Registers the embedded fonts with plotters once per process; every render calls it first.
pub(crate) fn ensure_registered() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (style, bytes) in [(FontStyle::Normal, REGULAR), (FontStyle::Bold, BOLD)] {
            // The bytes are fixed at build time and checked by a test; failing here is a bug.
            if register_font(FAMILY, style, bytes).is_err() {
                unreachable!("the embedded DejaVu Sans font does not parse");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_fonts_parse_and_differ() {
        for bytes in [REGULAR, BOLD] {
            assert!(register_font("lantern-test", FontStyle::Normal, bytes).is_ok());
        }
        assert_ne!(REGULAR, BOLD, "bold must be its own face");
    }
}
