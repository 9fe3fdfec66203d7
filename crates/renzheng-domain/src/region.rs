//! Region codes (GB/T 2260) → names.
//!
//! The table comes from the `china-citizen-id` crate, which ships one
//! GB/T 2260 snapshot per year from 1980 to 2022. Historical snapshots
//! matter: an ID number keeps the region code it was issued under for life,
//! even after that county is merged or renamed (e.g. 110103, Chongwen
//! District, abolished in 2010), so a current-only table would reject many
//! older, perfectly valid numbers.

use std::fmt;

/// Earliest yearly snapshot probed.
const FIRST_YEAR: u16 = 1980;
/// Latest yearly snapshot probed. Set a little past the newest snapshot the
/// table ships so that a table upgrade is picked up without a code change;
/// probing a missing year only costs a hash miss.
const LAST_YEAR: u16 = 2030;

/// Where an ID number was issued, resolved from its six-digit region code.
///
/// Names are those of the snapshot in which the code was found, preferring
/// the one for the holder's birth year (closest to when the code was
/// assigned), then later years, then earlier ones.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Region {
    province: &'static str,
    city: Option<&'static str>,
    county: Option<&'static str>,
    exact: bool,
}

impl Region {
    /// Province-level name, e.g. "浙江省".
    pub fn province(&self) -> &'static str {
        self.province
    }

    /// Prefecture-level name, e.g. "杭州市". `None` for codes that sit
    /// directly under the province (municipality districts such as
    /// Beijing's, province-administered county-level cities such as 仙桃市)
    /// and for codes only known down to the province.
    pub fn city(&self) -> Option<&'static str> {
        self.city
    }

    /// County-level name, e.g. "西湖区". `None` for province- and
    /// prefecture-level codes, and when the county code is not in the table.
    pub fn county(&self) -> Option<&'static str> {
        self.county
    }

    /// Whether the full six-digit code was found in the table.
    ///
    /// `false` means only a parent division was found: the code is newer
    /// than the table, or made up. Parsing still accepts such numbers
    /// (rejecting a genuine holder is worse than accepting a fabricated
    /// county; the checksum and the face match do the real work), but a
    /// caller that wants the strict behaviour can check this.
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// The full name, e.g. "浙江省杭州市西湖区".
    pub fn full_name(&self) -> String {
        let mut name = String::from(self.province);
        name.extend(self.city);
        name.extend(self.county);
        name
    }

    /// Resolves a six-digit code, preferring the snapshot of `birth_year`.
    ///
    /// Returns `None` when not even the province is known.
    pub(crate) fn resolve(code: &str, birth_year: u16) -> Option<Region> {
        debug_assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
        let province_code = format!("{}0000", &code[..2]);
        let prefecture_code = format!("{}00", &code[..4]);
        let level = if code == province_code {
            Level::Province
        } else if code == prefecture_code {
            Level::Prefecture
        } else {
            Level::County
        };

        let exact = probe_years(birth_year).find_map(|year| {
            let found = lookup(code, year)?;
            let province = found.province?;
            match level {
                Level::Province => Some(Region {
                    province,
                    city: None,
                    county: None,
                    exact: true,
                }),
                // The table reports a prefecture code as both city and
                // district; keep it once.
                Level::Prefecture => Some(Region {
                    province,
                    city: Some(found.city?),
                    county: None,
                    exact: true,
                }),
                Level::County => Some(Region {
                    province,
                    city: found.city,
                    county: Some(found.district?),
                    exact: true,
                }),
            }
        });
        if exact.is_some() {
            return exact;
        }

        let parent = if level == Level::County {
            probe_years(birth_year).find_map(|year| {
                let found = lookup(&prefecture_code, year)?;
                Some(Region {
                    province: found.province?,
                    city: Some(found.city?),
                    county: None,
                    exact: false,
                })
            })
        } else {
            None
        };
        parent.or_else(|| {
            probe_years(birth_year).find_map(|year| {
                Some(Region {
                    province: lookup(&province_code, year)?.province?,
                    city: None,
                    county: None,
                    exact: false,
                })
            })
        })
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("name", &self.full_name())
            .field("exact", &self.exact)
            .finish()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_name())
    }
}

/// Loads the region table now instead of on the first parse.
///
/// The table (several megabytes of JSON) is decoded on first use; a server
/// calls this at start-up so that no request pays for it.
pub fn preload_region_table() {
    let _ = lookup("110000", FIRST_YEAR);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Province,
    Prefecture,
    County,
}

/// The birth year's snapshot first, then later ones, then earlier ones.
fn probe_years(birth_year: u16) -> impl Iterator<Item = u16> {
    let start = birth_year.clamp(FIRST_YEAR, LAST_YEAR);
    (start..=LAST_YEAR).chain((FIRST_YEAR..start).rev())
}

/// One snapshot lookup.
///
/// `china-citizen-id` only exposes its table through its ID parser, which
/// reads the snapshot of the number's birth year. So we ask it about a
/// synthetic number born on 1 January of the wanted year; the synthetic
/// number never leaves this function.
fn lookup(code: &str, year: u16) -> Option<china_citizen_id::Region> {
    let mut synthetic = format!("{code}{year:04}0101001");
    synthetic.push(crate::checksum::check_char(synthetic.as_bytes()));
    china_citizen_id::parse_v2(&synthetic)
        .ok()
        .map(|parsed| parsed.region().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_county_resolves_to_full_name() {
        let r = Region::resolve("330106", 1990).unwrap();
        assert_eq!(r.full_name(), "浙江省杭州市西湖区");
        assert_eq!(r.province(), "浙江省");
        assert_eq!(r.city(), Some("杭州市"));
        assert_eq!(r.county(), Some("西湖区"));
        assert!(r.is_exact());
    }

    #[test]
    fn municipality_district_has_no_city_level() {
        let r = Region::resolve("110105", 1949).unwrap();
        assert_eq!(r.full_name(), "北京市朝阳区");
        assert_eq!(r.city(), None);
    }

    #[test]
    fn abolished_code_still_resolves() {
        // Chongwen District was merged into Dongcheng in 2010.
        let r = Region::resolve("110103", 2015).unwrap();
        assert_eq!(r.full_name(), "北京市崇文区");
        assert!(r.is_exact());
    }

    #[test]
    fn code_abolished_before_2000_still_resolves() {
        // Yanshan District existed only from 1981 to 1986.
        let r = Region::resolve("110110", 1960).unwrap();
        assert_eq!(r.full_name(), "北京市燕山区");
    }

    #[test]
    fn province_administered_city() {
        let r = Region::resolve("429004", 2000).unwrap();
        assert_eq!(r.full_name(), "湖北省仙桃市");
    }

    #[test]
    fn province_and_prefecture_codes() {
        assert_eq!(
            Region::resolve("330000", 1990).unwrap().full_name(),
            "浙江省"
        );
        assert_eq!(
            Region::resolve("330100", 1990).unwrap().full_name(),
            "浙江省杭州市"
        );
    }

    #[test]
    fn unknown_county_falls_back_to_parent() {
        let r = Region::resolve("330199", 1990).unwrap();
        assert_eq!(r.full_name(), "浙江省杭州市");
        assert!(!r.is_exact());
        let r = Region::resolve("110199", 1990).unwrap();
        assert_eq!(r.full_name(), "北京市");
        assert!(!r.is_exact());
    }

    #[test]
    fn unknown_province_is_none() {
        assert!(Region::resolve("990101", 1990).is_none());
        assert!(Region::resolve("000000", 1990).is_none());
    }
}
