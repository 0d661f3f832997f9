// Compiled (not linked) by the header.* ctest cases with strict warnings: wsffi.hpp must
// stay clean under them, alone and included twice.
#include "wsffi.hpp"
#include "wsffi.hpp"

int header_check();
int header_check() {
    wsffi::ByteView b("abc");
    wsffi::Message m{wsffi::MessageType::Text, b};
    wsffi::Conn c;
    wsffi::Conn d = c.retain();  // the member, not hidden by the static Conn::retain(wsffi_conn *)
    wsffi::Conn e = wsffi::Conn::retain(d.native());
    return static_cast<int>(m.text().size()) + (e ? 1 : 0);
}
