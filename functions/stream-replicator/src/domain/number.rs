//! DynamoDB numbers compared by value: `1`, `1.0`, `10E-1` and `+1` are the same number.
//!
//! [`parse_number`] reads a number's text without copying it, so sizing and hashing the
//! numbers of a large batch allocates nothing; [`CanonicalNumber`] is the owned form that
//! item keys keep.

/// A number reduced to sign, significant digits and decimal exponent, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberView<'a> {
    negative: bool,
    /// The significant digits before the decimal point, then those after it.
    head: &'a str,
    tail: &'a str,
    /// The power of ten of the last significant digit.
    exponent: i64,
}

/// A number reduced to sign, significant digits and decimal exponent (owned).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CanonicalNumber {
    negative: bool,
    digits: String,
    exponent: i64,
}

/// Parses a DynamoDB number; `None` when the text is not a number.
pub fn parse_number(text: &str) -> Option<NumberView<'_>> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros never count; they may run on past the decimal point.
    let (head, tail) = match whole.trim_start_matches('0') {
        "" => ("", fraction.trim_start_matches('0')),
        head => (head, fraction),
    };
    // Trailing zeros move into the exponent; they may run back before the decimal point.
    let (head, tail, trailing_zeros) = match tail.trim_end_matches('0') {
        "" => {
            let trimmed = head.trim_end_matches('0');
            (trimmed, "", tail.len() + head.len() - trimmed.len())
        }
        trimmed => (head, trimmed, tail.len() - trimmed.len()),
    };
    if head.is_empty() && tail.is_empty() {
        return Some(NumberView {
            negative: false,
            head: "0",
            tail: "",
            exponent: 0,
        });
    }
    // value = <whole><fraction> * 10^(exponent - fraction.len()), on the last significant digit.
    let exponent = exponent
        .checked_add(i64::try_from(trailing_zeros).ok()?)?
        .checked_sub(i64::try_from(fraction.len()).ok()?)?;
    Some(NumberView {
        negative,
        head,
        tail,
        exponent,
    })
}

/// Parses a DynamoDB number into its owned canonical form; `None` when it is not a number.
pub fn canonical_number(text: &str) -> Option<CanonicalNumber> {
    parse_number(text).map(|n| n.to_canonical())
}

impl NumberView<'_> {
    /// How many significant digits the number has (DynamoDB sizes numbers by them).
    pub fn digit_count(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// The owned canonical form.
    pub fn to_canonical(self) -> CanonicalNumber {
        CanonicalNumber {
            negative: self.negative,
            digits: [self.head, self.tail].concat(),
            exponent: self.exponent,
        }
    }

    /// Hands the canonical spelling `[-]<digits>e<exponent>` to `write` piece by piece,
    /// after its total length, without building it.
    pub fn spell(&self, mut write: impl FnMut(&[u8])) -> usize {
        let mut buffer = [0u8; 20];
        let exponent = decimal(self.exponent.unsigned_abs(), &mut buffer);
        let sign: &[u8] = if self.negative { b"-" } else { b"" };
        let exponent_sign: &[u8] = if self.exponent < 0 { b"e-" } else { b"e" };
        let parts = [
            sign,
            self.head.as_bytes(),
            self.tail.as_bytes(),
            exponent_sign,
            exponent,
        ];
        let length = parts.iter().map(|p| p.len()).sum();
        for part in parts {
            write(part);
        }
        length
    }

    /// The canonical spelling as a string.
    pub fn key(&self) -> String {
        let mut key = Vec::new();
        self.spell(|part| key.extend_from_slice(part));
        String::from_utf8(key).expect("the spelling of a number is ASCII")
    }
}

/// `value` in decimal digits, written to the end of `buffer`.
fn decimal(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

/// A string equal for equal numbers (the raw text when it is not a number at all).
pub fn number_key(n: &str) -> String {
    parse_number(n).map_or_else(|| n.to_owned(), |v| v.key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_the_same_value_are_canonically_equal() {
        let one = canonical_number("1").unwrap();
        for spelling in ["1.0", "+1", "10E-1", "0.1e1", "001.000", "1e0", " 1 "] {
            assert_eq!(canonical_number(spelling).unwrap(), one, "{spelling}");
        }
        assert_ne!(canonical_number("-1").unwrap(), one);
        assert_ne!(canonical_number("10").unwrap(), one);
        assert_eq!(canonical_number("-0.0").unwrap(), canonical_number("0").unwrap());
        assert_eq!(canonical_number("100.5").unwrap(), canonical_number("1005e-1").unwrap());
        assert_eq!(canonical_number("0.0500").unwrap(), canonical_number("5E-2").unwrap());
    }

    #[test]
    fn the_canonical_spelling_is_stable() {
        for (text, key) in [
            ("1200", "12e2"),
            ("-0.05", "-5e-2"),
            ("0", "0e0"),
            ("-0", "0e0"),
            ("10.010", "1001e-2"),
            ("1.5e10", "15e9"),
            ("123", "123e0"),
            ("not a number", "not a number"),
            ("-9e-9223372036854775807", "-9e-9223372036854775807"),
        ] {
            assert_eq!(number_key(text), key, "{text}");
        }
        let view = parse_number("-1.50").unwrap();
        assert_eq!(view.digit_count(), 2);
        let mut pieces = Vec::new();
        let length = view.spell(|p| pieces.extend_from_slice(p));
        assert_eq!((length, pieces.as_slice()), (6, b"-15e-1".as_slice()));
    }

    #[test]
    fn non_numbers_and_out_of_range_exponents_are_rejected() {
        for text in [
            "",
            "-",
            ".",
            "1.2.3",
            "abc",
            "1e",
            "1e+",
            "0x10",
            "1 2",
            "10e9223372036854775807",
        ] {
            assert!(parse_number(text).is_none(), "{text:?}");
        }
    }
}
