//! Any text as an ID number and as a name: parsed values round-trip and mask, refusals are
//! typed, nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use renzheng_domain::{IdNumber, PersonName};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = IdNumber::parse(text) {
        assert_eq!(id.as_str().len(), 18);
        assert_eq!(IdNumber::parse(id.as_str()).unwrap(), id);
        let masked = id.masked();
        assert!(!masked.contains(&id.as_str()[2..16]));
        let _ = (id.sex(), id.to_string());
    }
    if let Ok(name) = PersonName::parse(text) {
        assert_eq!(PersonName::parse(name.as_str()).unwrap().as_str(), name.as_str());
        let _ = name.masked();
    }
});
