//! The baseline: a private OpenLDAP `slapd` (Debian's `slapd` package, mdb
//! backend) on a loopback port, serving LDAPS with Lightwell's own server
//! certificate, bulk-loaded with `slapadd` from the same directory the
//! bench seeds into Lightwell. Nothing is installed here: `slapd` and
//! `slapadd` must be on the machine (`apt-get install slapd ldap-utils`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::directory::{BASE_DN, Directory};

/// `slapd`'s directories on Debian (it is not on a normal user's PATH).
const SBIN: &str = "/usr/sbin";

/// A running private `slapd`; stopped (and its files removed) on drop.
pub(crate) struct Slapd {
    child: Child,
    /// Its LDAPS address.
    pub(crate) addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(name: &str) -> Result<PathBuf> {
    let path = Path::new(SBIN).join(name);
    if !path.exists() {
        bail!("{} is missing: install OpenLDAP first (apt-get install -y slapd ldap-utils)", path.display());
    }
    Ok(path)
}

/// slapd.conf: the schema `inetOrgPerson` needs, the memberof module (for
/// the `memberOf` attribute type, whose values the LDIF carries because
/// slapadd runs no overlay), argon2 (so both servers verify the same
/// argon2id hashes) and equality indexes on what the bench filters by.
fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         moduleload memberof\n\
         moduleload argon2\n\
         pidfile {d}/slapd.pid\n\
         argsfile {d}/slapd.args\n\
         TLSCertificateFile {d}/server.pem\n\
         TLSCertificateKeyFile {d}/server.key\n\
         database mdb\n\
         maxsize 8589934592\n\
         suffix \"{BASE_DN}\"\n\
         rootdn \"cn=admin,{BASE_DN}\"\n\
         directory {d}/db\n\
         index objectClass eq\n\
         index uid,cn,mail eq\n\
         index member,memberOf eq\n\
         overlay memberof\n"
    )
}

/// The directory as LDIF: the base, two containers, the groups, the users
/// (each with its `memberOf`), all with the same argon2id hash as Lightwell.
fn ldif(dir: &Directory) -> String {
    let mut out = String::with_capacity(dir.users * 400);
    let _ = write!(
        out,
        "dn: {BASE_DN}\nobjectClass: top\nobjectClass: domain\ndc: bench\n\n\
         dn: cn=Users,{BASE_DN}\nobjectClass: organizationalRole\ncn: Users\n\n\
         dn: cn=Groups,{BASE_DN}\nobjectClass: organizationalRole\ncn: Groups\n\n"
    );
    for g in 0..dir.groups {
        let _ = write!(out, "dn: {}\nobjectClass: groupOfNames\ncn: {}\n", dir.group_dn(g), dir.group_name(g));
        for u in dir.members(g) {
            let _ = writeln!(out, "member: {}", dir.user_dn(u));
        }
        out.push('\n');
    }
    for u in 0..dir.users {
        let name = dir.user_name(u);
        let _ = write!(
            out,
            "dn: {}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\nsn: {name}\nmail: {}\n\
             userPassword: {{ARGON2}}{}\nmemberOf: {}\n\n",
            dir.user_dn(u),
            dir.email(u),
            dir.password_hash,
            dir.group_dn(dir.group_of(u)),
        );
    }
    out
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Slapd {
    /// Loads `dir` with slapadd and starts slapd serving LDAPS with the
    /// certificate chain and key given (PEM files).
    pub(crate) fn start(dir: &Directory, cert: &Path, key: &Path) -> Result<Self> {
        let (slapd, slapadd) = (program("slapd")?, program("slapadd")?);
        let tmp = tempfile::Builder::new().prefix("bench-slapd").tempdir()?;
        let root = tmp.path();
        std::fs::create_dir(root.join("db"))?;
        std::fs::copy(cert, root.join("server.pem"))?;
        std::fs::copy(key, root.join("server.key"))?;
        std::fs::write(root.join("slapd.conf"), config(root))?;
        std::fs::write(root.join("data.ldif"), ldif(dir))?;
        let conf = root.join("slapd.conf");
        let out =
            Command::new(slapadd).arg("-q").arg("-f").arg(&conf).arg("-l").arg(root.join("data.ldif")).output()?;
        if !out.status.success() {
            bail!("slapadd failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = free_port()?;
        let url = format!("ldaps://127.0.0.1:{port}/");
        // `-d 0`: stay in the foreground, so the bench owns (and stops) the process.
        let child = Command::new(slapd)
            .arg("-f")
            .arg(&conf)
            .args(["-h", &url, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting slapd")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut slapd = Self { child, addr, _dir: tmp };
        let start = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(status) = slapd.child.try_wait()? {
                bail!("slapd exited at start ({status}); run it by hand with -d 1 to see why");
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("slapd did not listen on {addr} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(slapd)
    }

    /// The process id (for its CPU time).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}
