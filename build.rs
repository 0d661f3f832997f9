//! Gives the shared library its SONAME. Before 1.0 any minor version may change the ABI,
//! so the SONAME carries major and minor (`libwsffi.so.0.1`); from 1.0 on, the major alone.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let minor = env!("CARGO_PKG_VERSION_MINOR");
    let abi = if major == "0" { format!("0.{minor}") } else { major.to_string() };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libwsffi.so.{abi}");
}
