// Compiled (not linked) by the header.* ctest cases with strict warnings: wsffi.hpp must
// stay clean under them, alone and included twice.
#include "wsffi.hpp"
#include "wsffi.hpp"

int header_check();
int header_check() {
    wsffi::ByteView b("abc");
    wsffi::Message m{wsffi::MessageType::Text, b};
    return static_cast<int>(m.text().size());
}
