//! Device tokens: 32 bytes on the wire, 64 hex digits in every token list.
//!
//! Token lists come from databases, logs and iOS `description` output, so the
//! parser accepts the usual decorations (`<` `>` around the token, spaces
//! between groups, either case) and rejects everything else with an error that
//! says what is wrong.

use std::fmt;
use std::str::FromStr;

/// The length of a device token on the wire, in bytes.
pub const TOKEN_LEN: usize = 32;

/// A 32-byte APNs device token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceToken(pub [u8; TOKEN_LEN]);

/// Why a string is not a device token.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Nothing but decorations.
    Empty,
    /// A character that is not a hex digit, space or angle bracket.
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its character position in the input (0-based).
        pos: usize,
    },
    /// The hex digits do not make 32 bytes.
    WrongLength {
        /// How many hex digits were found.
        digits: usize,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TokenError::Empty => f.write_str("empty token"),
            TokenError::InvalidChar { ch, pos } => {
                write!(f, "invalid character {ch:?} at column {}", pos + 1)
            }
            TokenError::WrongLength { digits } => {
                write!(f, "token has {digits} hex digits, expected {}", 2 * TOKEN_LEN)
            }
        }
    }
}

impl std::error::Error for TokenError {}

impl DeviceToken {
    /// Parses 64 hex digits, ignoring surrounding `<` `>` and any spaces or tabs.
    ///
    /// # Errors
    /// [`TokenError`] says whether the input was empty, held a stray character
    /// (and where), or had the wrong number of digits.
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let mut bytes = [0u8; TOKEN_LEN];
        let mut digits = 0usize;
        let (mut opened, mut closed) = (false, false);
        for (pos, ch) in s.chars().enumerate() {
            let v = match ch {
                ' ' | '\t' | '\r' | '\n' => continue,
                '<' if digits == 0 && !opened => {
                    opened = true;
                    continue;
                }
                '>' if !closed => {
                    closed = true;
                    continue;
                }
                _ if closed => return Err(TokenError::InvalidChar { ch, pos }),
                '0'..='9' => ch as u8 - b'0',
                'a'..='f' => ch as u8 - b'a' + 10,
                'A'..='F' => ch as u8 - b'A' + 10,
                _ => return Err(TokenError::InvalidChar { ch, pos }),
            };
            if digits < 2 * TOKEN_LEN {
                bytes[digits / 2] |= if digits.is_multiple_of(2) { v << 4 } else { v };
            }
            digits += 1;
        }
        match digits {
            0 => Err(TokenError::Empty),
            d if d == 2 * TOKEN_LEN => Ok(DeviceToken(bytes)),
            d => Err(TokenError::WrongLength { digits: d }),
        }
    }

    /// A token of these 32 bytes.
    pub const fn from_bytes(bytes: [u8; TOKEN_LEN]) -> DeviceToken {
        DeviceToken(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; TOKEN_LEN] {
        &self.0
    }
}

impl FromStr for DeviceToken {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, TokenError> {
        DeviceToken::parse(s)
    }
}

impl fmt::Display for DeviceToken {
    /// Lower-case hex, 64 digits, no decoration: the form databases store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 2 * TOKEN_LEN];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        // The buffer holds ASCII hex digits only.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceToken({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn parses_plain_hex() {
        let t = DeviceToken::parse(HEX).unwrap();
        assert_eq!(t.0[0], 0x00);
        assert_eq!(t.0[1], 0x11);
        assert_eq!(t.0[15], 0xff);
        assert_eq!(t.to_string(), HEX);
    }

    #[test]
    fn parses_ios_description_form() {
        let s = "<00112233 44556677 8899AABB CCDDEEFF 00112233 44556677 8899aabb ccddeeff>";
        assert_eq!(DeviceToken::parse(s).unwrap().to_string(), HEX);
        assert_eq!(DeviceToken::parse(&format!("  {HEX}\t")).unwrap().to_string(), HEX);
    }

    #[test]
    fn rejects_with_reason() {
        assert_eq!(DeviceToken::parse("  <> "), Err(TokenError::Empty));
        assert_eq!(DeviceToken::parse("abc"), Err(TokenError::WrongLength { digits: 3 }));
        assert_eq!(DeviceToken::parse(&format!("{HEX}00")), Err(TokenError::WrongLength { digits: 66 }));
        let bad = format!("<{}x{}>", &HEX[..10], &HEX[11..]);
        assert_eq!(DeviceToken::parse(&bad), Err(TokenError::InvalidChar { ch: 'x', pos: 11 }));
        assert_eq!(
            DeviceToken::parse("user@example.com").unwrap_err().to_string(),
            "invalid character 'u' at column 1"
        );
    }
}
