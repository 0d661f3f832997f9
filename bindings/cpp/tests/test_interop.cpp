// Interop: Python's `websockets` client against the C++ echo server (skipped when Python
// or the package is missing).
#include <cstdio>
#include <cstdlib>

#include "support.hpp"

using support::Env;

namespace {

std::string run(const std::string &cmd, int *status) {
    std::string out;
    FILE *p = popen(cmd.c_str(), "r");
    if (p == nullptr) {
        *status = -1;
        return out;
    }
    char buf[512];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    *status = pclose(p);
    return out;
}

TEST(Interop, PythonWebsocketsClient) {
    int status = 0;
    run("python3 -c 'import websockets' 2>/dev/null", &status);
    if (status != 0) GTEST_SKIP() << "python3 with websockets not available";
    Env env;
    wsffi::ServerOptions so;
    so.per_message_deflate(true);
    wsffi::ServerHandlers h;
    h.handle_protocols = [](const wsffi::Request &, const std::vector<std::string_view> &offered)
        -> std::optional<std::size_t> {
        for (std::size_t i = 0; i < offered.size(); i++)
            if (offered[i] == "echo") return i;
        return std::nullopt;
    };
    env.start(std::move(h), &so);
    std::string script =
        "import asyncio, sys\n"
        "from websockets.asyncio.client import connect\n"
        "async def main():\n"
        "    async with connect(sys.argv[1], subprotocols=['other', 'echo']) as ws:\n"
        "        assert ws.subprotocol == 'echo', ws.subprotocol\n"
        "        await ws.send('hello from python')\n"
        "        print(await ws.recv())\n"
        "        await ws.send(bytes(range(256)) * 100)\n"
        "        data = await ws.recv()\n"
        "        print(len(data), data == bytes(range(256)) * 100)\n"
        "        await ws.close(4000, 'py done')\n"
        "asyncio.run(main())\n";
    std::string cmd = "python3 -c \"$(cat <<'PYEOF'\n" + script + "PYEOF\n)\" " + env.url() + " 2>&1";
    std::string out = run(cmd, &status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(out, "hello from python\n25600 True\n");
    ASSERT_TRUE(env.server_side.wait_closed());
    env.server_side.read([&] {
        EXPECT_EQ(env.server_side.close.code, 4000);
        EXPECT_EQ(env.server_side.close.reason, "py done");
        EXPECT_NE(env.server_side.extensions.find("permessage-deflate"), std::string::npos);
    });
}

}  // namespace
