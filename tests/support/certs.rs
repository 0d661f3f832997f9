//! Test certificates, generated fresh with rcgen (nothing is checked in): a CA with server
//! certificates (valid, expired, for another host, for an SNI-only name), another CA, and a
//! client CA with a client certificate.
#![allow(dead_code)]

use std::path::Path;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its key, PEM and DER.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// Everything the TLS tests use.
pub struct TestPki {
    /// The CA clients trust.
    pub ca: Pair,
    /// localhost, 127.0.0.1 and ::1, signed by `ca`.
    pub server: Pair,
    /// Like `server`, but expired in 2001.
    pub expired: Pair,
    /// Only for example.com.
    pub wrong_host: Pair,
    /// Only for wsffi.test (reached through the SNI override).
    pub sni: Pair,
    /// A CA nobody trusts, and a localhost certificate it signed.
    pub other_ca: Pair,
    pub other_server: Pair,
    /// A client certificate (CN=stranger) signed by `other_ca`.
    pub stranger: Pair,
    /// The CA the server trusts for client certificates, and a client certificate
    /// (subject CN=client,O=Example).
    pub client_ca: Pair,
    pub client: Pair,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "wsffi tests");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn pair_of(issuer: &CertifiedIssuer<'static, KeyPair>) -> Pair {
    let key = issuer.key();
    Pair {
        cert_pem: issuer.pem(),
        key_pem: key.serialize_pem(),
        cert_der: issuer.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

fn leaf(
    names: &[&str],
    ips: &[&str],
    subject: &[(DnType, &str)],
    purpose: ExtendedKeyUsagePurpose,
    expired: bool,
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> Pair {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(ip.parse().expect("ip")));
    }
    let mut dn = DistinguishedName::new();
    for (t, v) in subject {
        dn.push(t.clone(), *v);
    }
    params.distinguished_name = dn;
    params.extended_key_usages = vec![purpose];
    if expired {
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("sign");
    Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

/// Generates a fresh set.
pub fn generate() -> TestPki {
    let server = ExtendedKeyUsagePurpose::ServerAuth;
    let local = ["localhost"];
    let local_ips = ["127.0.0.1", "::1"];
    let cn = |v: &'static str| vec![(DnType::CommonName, v)];
    let ca_issuer = ca("wsffi test CA");
    let other_issuer = ca("wsffi untrusted CA");
    let client_issuer = ca("wsffi client CA");
    TestPki {
        server: leaf(&local, &local_ips, &cn("localhost"), server.clone(), false, &ca_issuer),
        expired: leaf(&local, &local_ips, &cn("localhost"), server.clone(), true, &ca_issuer),
        wrong_host: leaf(&["example.com"], &[], &cn("example.com"), server.clone(), false, &ca_issuer),
        sni: leaf(&["wsffi.test"], &[], &cn("wsffi.test"), server.clone(), false, &ca_issuer),
        other_server: leaf(&local, &local_ips, &cn("localhost"), server, false, &other_issuer),
        stranger: leaf(&[], &[], &cn("stranger"), ExtendedKeyUsagePurpose::ClientAuth, false, &other_issuer),
        client: leaf(
            &[],
            &[],
            &[(DnType::OrganizationName, "Example"), (DnType::CommonName, "client")],
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
            &client_issuer,
        ),
        ca: pair_of(&ca_issuer),
        other_ca: pair_of(&other_issuer),
        client_ca: pair_of(&client_issuer),
    }
}

impl TestPki {
    /// Writes `<name>.pem` (certificate) and `<name>.key` (key) for each, plus `<name>.der`
    /// and `<name>.key.der` for the server.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let all = [
            ("ca", &self.ca),
            ("server", &self.server),
            ("expired", &self.expired),
            ("wrong-host", &self.wrong_host),
            ("sni", &self.sni),
            ("other-ca", &self.other_ca),
            ("other-server", &self.other_server),
            ("stranger", &self.stranger),
            ("client-ca", &self.client_ca),
            ("client", &self.client),
        ];
        for (name, pair) in all {
            std::fs::write(dir.join(format!("{name}.pem")), &pair.cert_pem)?;
            std::fs::write(dir.join(format!("{name}.key")), &pair.key_pem)?;
        }
        std::fs::write(dir.join("server.der"), &self.server.cert_der)?;
        std::fs::write(dir.join("server.key.der"), &self.server.key_der)?;
        Ok(())
    }
}
