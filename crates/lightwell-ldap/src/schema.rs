//! The schema Lightwell's tree uses: attribute types with their syntax and
//! matching rules, object classes, and the subschema entry (`cn=Subschema`)
//! that generic LDAP tools read. Only standard definitions (RFC 4519, 4524,
//! 2798, 2307, 4530, 3045/4512 operational attributes, and AD's `memberOf`,
//! `dNSHostName` and `container`) so any client already knows them.

/// How values of an attribute are written and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// Directory String, caseIgnoreMatch.
    DirectoryString,
    /// IA5 String, caseIgnoreIA5Match.
    Ia5,
    /// Distinguished name, distinguishedNameMatch.
    Dn,
    /// GeneralizedTime (`YYYYMMDDHHMMSSZ`), ordered.
    GeneralizedTime,
    /// Object identifier or descriptor, case-insensitive.
    Oid,
    /// Integer.
    Integer,
    /// UUID (RFC 4530), case-insensitive.
    Uuid,
    /// Boolean (`TRUE` / `FALSE`).
    Boolean,
    /// Octet string; never compared or returned (userPassword).
    Octet,
    /// Schema descriptions (subschema entry).
    Description(&'static str),
    /// An X.509 certificate (DER), transferred with `;binary`; only presence is tested.
    Certificate,
    /// An X.509 CRL (DER), transferred with `;binary`; only presence is tested.
    CertificateList,
}

impl Syntax {
    fn oid(self) -> &'static str {
        match self {
            Syntax::DirectoryString => "1.3.6.1.4.1.1466.115.121.1.15",
            Syntax::Ia5 => "1.3.6.1.4.1.1466.115.121.1.26",
            Syntax::Dn => "1.3.6.1.4.1.1466.115.121.1.12",
            Syntax::GeneralizedTime => "1.3.6.1.4.1.1466.115.121.1.24",
            Syntax::Oid => "1.3.6.1.4.1.1466.115.121.1.38",
            Syntax::Integer => "1.3.6.1.4.1.1466.115.121.1.27",
            Syntax::Uuid => "1.3.6.1.1.16.1",
            Syntax::Boolean => "1.3.6.1.4.1.1466.115.121.1.7",
            Syntax::Octet => "1.3.6.1.4.1.1466.115.121.1.40",
            Syntax::Description(oid) => oid,
            Syntax::Certificate => "1.3.6.1.4.1.1466.115.121.1.8",
            Syntax::CertificateList => "1.3.6.1.4.1.1466.115.121.1.9",
        }
    }

    /// (equality, ordering, substrings) matching rules.
    fn rules(self) -> (Option<&'static str>, Option<&'static str>, Option<&'static str>) {
        match self {
            Syntax::DirectoryString => {
                (Some("caseIgnoreMatch"), Some("caseIgnoreOrderingMatch"), Some("caseIgnoreSubstringsMatch"))
            }
            Syntax::Ia5 => (Some("caseIgnoreIA5Match"), None, Some("caseIgnoreIA5SubstringsMatch")),
            Syntax::Dn => (Some("distinguishedNameMatch"), None, None),
            Syntax::GeneralizedTime => (Some("generalizedTimeMatch"), Some("generalizedTimeOrderingMatch"), None),
            Syntax::Oid => (Some("objectIdentifierMatch"), None, None),
            Syntax::Integer => (Some("integerMatch"), Some("integerOrderingMatch"), None),
            Syntax::Uuid => (Some("uuidMatch"), Some("uuidOrderingMatch"), None),
            Syntax::Boolean => (Some("booleanMatch"), None, None),
            Syntax::Octet => (Some("octetStringMatch"), None, None),
            Syntax::Description(_) => (Some("objectIdentifierFirstComponentMatch"), None, None),
            Syntax::Certificate => (Some("certificateExactMatch"), None, None),
            Syntax::CertificateList => (Some("certificateListExactMatch"), None, None),
        }
    }

    /// Whether `>=` and `<=` are defined.
    pub(crate) fn has_ordering(self) -> bool {
        self.rules().1.is_some()
    }

    /// Whether substring filters are defined.
    pub(crate) fn has_substrings(self) -> bool {
        self.rules().2.is_some()
    }

    /// Whether values can be compared at all (userPassword cannot).
    pub(crate) fn comparable(self) -> bool {
        !matches!(self, Syntax::Octet | Syntax::Certificate | Syntax::CertificateList)
    }

    /// The form values are compared in: for DNs the normalized DN, for
    /// everything else lower case with runs of spaces collapsed.
    pub(crate) fn normalize(self, v: &str) -> String {
        match self {
            Syntax::Dn => crate::dn::normalize(v).unwrap_or_else(|| v.to_lowercase()),
            Syntax::Integer => v.trim().to_string(),
            _ => v.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase(),
        }
    }
}

/// An attribute type.
#[derive(Debug)]
pub(crate) struct AttrDef {
    /// Canonical name, as returned.
    pub(crate) name: &'static str,
    /// Other names it answers to.
    pub(crate) aliases: &'static [&'static str],
    oid: &'static str,
    /// Value syntax and matching.
    pub(crate) syntax: Syntax,
    single: bool,
    /// Returned only when asked for by name or with `+`.
    pub(crate) operational: bool,
    /// Maintained by the server; clients cannot write it.
    pub(crate) no_user_modification: bool,
}

const fn user(name: &'static str, oid: &'static str, syntax: Syntax) -> AttrDef {
    AttrDef { name, aliases: &[], oid, syntax, single: false, operational: false, no_user_modification: false }
}

const fn op(name: &'static str, oid: &'static str, syntax: Syntax) -> AttrDef {
    AttrDef { name, aliases: &[], oid, syntax, single: false, operational: true, no_user_modification: true }
}

const fn aliased(mut a: AttrDef, aliases: &'static [&'static str]) -> AttrDef {
    a.aliases = aliases;
    a
}

const fn single(mut a: AttrDef) -> AttrDef {
    a.single = true;
    a
}

const fn server_maintained(mut a: AttrDef) -> AttrDef {
    a.no_user_modification = true;
    a
}

/// Every attribute type the server knows.
pub(crate) static ATTRIBUTES: &[AttrDef] = &[
    user("objectClass", "2.5.4.0", Syntax::Oid),
    aliased(user("uid", "0.9.2342.19200300.100.1.1", Syntax::DirectoryString), &["userid"]),
    aliased(user("cn", "2.5.4.3", Syntax::DirectoryString), &["commonName"]),
    aliased(user("sn", "2.5.4.4", Syntax::DirectoryString), &["surname"]),
    aliased(user("givenName", "2.5.4.42", Syntax::DirectoryString), &["gn"]),
    single(user("displayName", "2.16.840.1.113730.3.1.241", Syntax::DirectoryString)),
    aliased(user("mail", "0.9.2342.19200300.100.1.3", Syntax::Ia5), &["rfc822Mailbox"]),
    user("userPassword", "2.5.4.35", Syntax::Octet),
    user("member", "2.5.4.31", Syntax::Dn),
    user("seeAlso", "2.5.4.34", Syntax::Dn),
    server_maintained(user("memberOf", "1.2.840.113556.1.2.102", Syntax::Dn)),
    aliased(single(user("dc", "0.9.2342.19200300.100.1.25", Syntax::Ia5)), &["domainComponent"]),
    aliased(user("ou", "2.5.4.11", Syntax::DirectoryString), &["organizationalUnitName"]),
    user("description", "2.5.4.13", Syntax::DirectoryString),
    user("dNSHostName", "1.2.840.113556.1.4.619", Syntax::Ia5),
    user("ipHostNumber", "1.3.6.1.1.1.1.19", Syntax::Ia5),
    server_maintained(user("userCertificate", "2.5.4.36", Syntax::Certificate)),
    server_maintained(user("cACertificate", "2.5.4.37", Syntax::Certificate)),
    server_maintained(user("certificateRevocationList", "2.5.4.39", Syntax::CertificateList)),
    server_maintained(user("deltaRevocationList", "2.5.4.53", Syntax::CertificateList)),
    // RFC 2079: a workload entry's SPIFFE ID.
    user("labeledURI", "1.3.6.1.4.1.250.1.57", Syntax::DirectoryString),
    single(op("entryUUID", "1.3.6.1.1.16.4", Syntax::Uuid)),
    single(op("createTimestamp", "2.5.18.1", Syntax::GeneralizedTime)),
    single(op("modifyTimestamp", "2.5.18.2", Syntax::GeneralizedTime)),
    single(op("entryDN", "1.3.6.1.1.20", Syntax::Dn)),
    single(op("subschemaSubentry", "2.5.18.10", Syntax::Dn)),
    single(op("hasSubordinates", "2.5.18.9", Syntax::Boolean)),
    op("namingContexts", "1.3.6.1.4.1.1466.101.120.5", Syntax::Dn),
    op("supportedLDAPVersion", "1.3.6.1.4.1.1466.101.120.15", Syntax::Integer),
    op("supportedExtension", "1.3.6.1.4.1.1466.101.120.7", Syntax::Oid),
    op("supportedControl", "1.3.6.1.4.1.1466.101.120.13", Syntax::Oid),
    op("supportedSASLMechanisms", "1.3.6.1.4.1.1466.101.120.14", Syntax::DirectoryString),
    op("supportedFeatures", "1.3.6.1.4.1.4203.1.3.5", Syntax::Oid),
    single(op("vendorName", "1.3.6.1.1.4", Syntax::DirectoryString)),
    single(op("vendorVersion", "1.3.6.1.1.5", Syntax::DirectoryString)),
    op("attributeTypes", "2.5.21.5", Syntax::Description("1.3.6.1.4.1.1466.115.121.1.3")),
    op("objectClasses", "2.5.21.6", Syntax::Description("1.3.6.1.4.1.1466.115.121.1.37")),
    op("ldapSyntaxes", "1.3.6.1.4.1.1466.101.120.16", Syntax::Description("1.3.6.1.4.1.1466.115.121.1.54")),
    op("matchingRules", "2.5.21.4", Syntax::Description("1.3.6.1.4.1.1466.115.121.1.30")),
];

/// Looks up an attribute type by name or alias, ignoring case and options
/// (`userCertificate;binary` is `userCertificate`).
pub(crate) fn attr(name: &str) -> Option<&'static AttrDef> {
    let base = name.split(';').next().unwrap_or(name);
    ATTRIBUTES
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(base) || a.aliases.iter().any(|x| x.eq_ignore_ascii_case(base)))
}

/// The definition of an attribute the code names directly.
pub(crate) fn known(name: &'static str) -> &'static AttrDef {
    // Invariant: every name passed here is in ATTRIBUTES (checked by
    // entry::tests::every_attribute_the_entries_use_is_in_the_schema).
    attr(name).unwrap_or(&ATTRIBUTES[0])
}

/// Object classes: (name, oid, kind, superior, must, may).
type ObjectClassDef =
    (&'static str, &'static str, &'static str, &'static str, &'static [&'static str], &'static [&'static str]);

static OBJECT_CLASSES: &[ObjectClassDef] = &[
    ("top", "2.5.6.0", "ABSTRACT", "", &["objectClass"], &[]),
    ("person", "2.5.6.6", "STRUCTURAL", "top", &["sn", "cn"], &["userPassword", "description"]),
    ("organizationalPerson", "2.5.6.7", "STRUCTURAL", "person", &[], &["ou"]),
    (
        "inetOrgPerson",
        "2.16.840.1.113730.3.2.2",
        "STRUCTURAL",
        "organizationalPerson",
        &[],
        &["uid", "mail", "displayName", "givenName"],
    ),
    ("groupOfNames", "2.5.6.9", "STRUCTURAL", "top", &["member", "cn"], &["description", "ou"]),
    ("domain", "0.9.2342.19200300.100.4.13", "STRUCTURAL", "top", &["dc"], &["description"]),
    ("dcObject", "1.3.6.1.4.1.1466.344", "AUXILIARY", "top", &["dc"], &[]),
    ("organizationalUnit", "2.5.6.5", "STRUCTURAL", "top", &["ou"], &["description"]),
    ("container", "1.2.840.113556.1.3.23", "STRUCTURAL", "top", &["cn"], &["description"]),
    ("device", "2.5.6.14", "STRUCTURAL", "top", &["cn"], &["description", "ou"]),
    ("ipHost", "1.3.6.1.1.1.2.6", "AUXILIARY", "top", &["cn", "ipHostNumber"], &["description"]),
    ("applicationProcess", "2.5.6.11", "STRUCTURAL", "top", &["cn"], &["description", "ou", "seeAlso"]),
    ("pkiUser", "2.5.6.21", "AUXILIARY", "top", &[], &["userCertificate"]),
    ("pkiCA", "2.5.6.22", "AUXILIARY", "top", &[], &["cACertificate", "certificateRevocationList"]),
    ("deltaCRL", "2.5.6.23", "AUXILIARY", "top", &[], &["deltaRevocationList"]),
    ("labeledURIObject", "1.3.6.1.4.1.250.3.15", "AUXILIARY", "top", &[], &["labeledURI"]),
    ("extensibleObject", "1.3.6.1.4.1.1466.101.120.111", "AUXILIARY", "top", &[], &[]),
    (
        "subschema",
        "2.5.20.1",
        "AUXILIARY",
        "top",
        &[],
        &["attributeTypes", "objectClasses", "ldapSyntaxes", "matchingRules"],
    ),
    ("subentry", "2.5.17.0", "STRUCTURAL", "top", &["cn"], &[]),
];

fn qdescrs(names: &[&str]) -> String {
    match names {
        [one] => format!("'{one}'"),
        many => format!("( {} )", many.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(" ")),
    }
}

fn oids(names: &[&str]) -> String {
    match names {
        [one] => (*one).to_string(),
        many => format!("( {} )", many.join(" $ ")),
    }
}

/// `attributeTypes` values (RFC 4512 section 4.1.2).
fn attribute_types() -> Vec<String> {
    ATTRIBUTES
        .iter()
        .map(|a| {
            let mut names = vec![a.name];
            names.extend_from_slice(a.aliases);
            let (eq, ord, sub) = a.syntax.rules();
            let mut s = format!("( {} NAME {}", a.oid, qdescrs(&names));
            for (kw, rule) in [("EQUALITY", eq), ("ORDERING", ord), ("SUBSTR", sub)] {
                if let Some(r) = rule {
                    s.push_str(&format!(" {kw} {r}"));
                }
            }
            s.push_str(&format!(" SYNTAX {}", a.syntax.oid()));
            if a.single {
                s.push_str(" SINGLE-VALUE");
            }
            if a.no_user_modification {
                s.push_str(" NO-USER-MODIFICATION");
            }
            if a.operational {
                s.push_str(" USAGE directoryOperation");
            }
            s.push_str(" )");
            s
        })
        .collect()
}

fn object_classes() -> Vec<String> {
    OBJECT_CLASSES
        .iter()
        .map(|(name, oid, kind, sup, must, may)| {
            let mut s = format!("( {oid} NAME '{name}'");
            if !sup.is_empty() {
                s.push_str(&format!(" SUP {sup}"));
            }
            s.push_str(&format!(" {kind}"));
            if !must.is_empty() {
                s.push_str(&format!(" MUST {}", oids(must)));
            }
            if !may.is_empty() {
                s.push_str(&format!(" MAY {}", oids(may)));
            }
            s.push_str(" )");
            s
        })
        .collect()
}

fn ldap_syntaxes() -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    for a in ATTRIBUTES {
        let oid = a.syntax.oid();
        if !seen.contains(&oid) {
            seen.push(oid);
        }
    }
    seen.into_iter().map(|oid| format!("( {oid} )")).collect()
}

fn matching_rules() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in ATTRIBUTES {
        let (eq, ord, sub) = a.syntax.rules();
        for rule in [eq, ord, sub].into_iter().flatten() {
            let desc = format!("( {} NAME '{rule}' SYNTAX {} )", rule_oid(rule), a.syntax.oid());
            if !out.iter().any(|d| d.contains(&format!("'{rule}'"))) {
                out.push(desc);
            }
        }
    }
    out
}

fn rule_oid(rule: &str) -> &'static str {
    match rule {
        "caseIgnoreMatch" => "2.5.13.2",
        "caseIgnoreOrderingMatch" => "2.5.13.3",
        "caseIgnoreSubstringsMatch" => "2.5.13.4",
        "caseIgnoreIA5Match" => "1.3.6.1.4.1.1466.109.114.2",
        "caseIgnoreIA5SubstringsMatch" => "1.3.6.1.4.1.1466.109.114.3",
        "distinguishedNameMatch" => "2.5.13.1",
        "generalizedTimeMatch" => "2.5.13.27",
        "generalizedTimeOrderingMatch" => "2.5.13.28",
        "objectIdentifierMatch" => "2.5.13.0",
        "integerMatch" => "2.5.13.14",
        "integerOrderingMatch" => "2.5.13.15",
        "uuidMatch" => "1.3.6.1.1.16.2",
        "uuidOrderingMatch" => "1.3.6.1.1.16.3",
        "booleanMatch" => "2.5.13.13",
        "octetStringMatch" => "2.5.13.17",
        _ => "2.5.13.30", // objectIdentifierFirstComponentMatch
    }
}

/// DN of the subschema entry.
pub(crate) const SUBSCHEMA_DN: &str = "cn=Subschema";

/// The subschema entry's attributes, (name, values).
pub(crate) fn subschema_attributes() -> Vec<(&'static str, Vec<String>)> {
    vec![
        ("objectClass", vec!["top".into(), "subentry".into(), "subschema".into()]),
        ("cn", vec!["Subschema".into()]),
        ("attributeTypes", attribute_types()),
        ("objectClasses", object_classes()),
        ("ldapSyntaxes", ldap_syntaxes()),
        ("matchingRules", matching_rules()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_aliases_and_options() {
        assert_eq!(attr("CommonName").map(|a| a.name), Some("cn"));
        assert_eq!(attr("MAIL;lang-en").map(|a| a.name), Some("mail"));
        assert!(attr("nonesuch").is_none());
    }

    #[test]
    fn object_classes_name_only_known_attributes() {
        for (name, _, _, _, must, may) in OBJECT_CLASSES {
            for a in must.iter().chain(may.iter()) {
                assert!(attr(a).is_some(), "{name} names unknown attribute {a}");
            }
        }
        assert!(attribute_types().iter().any(|d| d.contains("NAME ( 'uid' 'userid' )")));
    }
}
