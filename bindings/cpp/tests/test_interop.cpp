// Interop: Python's `websockets` client against the C++ echo server and the examples
// (skipped when Python or the package is missing).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

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

bool have_websockets() {
    int status = 0;
    run("python3 -c 'import websockets' 2>/dev/null", &status);
    return status == 0;
}

// Runs a Python script (argv[1] = `arg`) and returns its output; `status` gets its exit status.
std::string python(const std::string &script, const std::string &arg, int *status) {
    return run("python3 -c \"$(cat <<'PYEOF'\n" + script + "PYEOF\n)\" " + arg + " 2>&1", status);
}

// An example server started on a free port; stopped with SIGTERM (it must exit 0).
class Example {
public:
    explicit Example(const std::string &name) {
        std::string path = std::string(WSFFI_CPP_EXAMPLES_DIR) + "/" + name;
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
        std::string addr = "127.0.0.1:0";
        char *argv[] = {const_cast<char *>(path.c_str()), const_cast<char *>(addr.c_str()), nullptr};
        if (posix_spawn(&pid_, path.c_str(), &fa, nullptr, argv, environ) != 0) throw std::runtime_error("spawn");
        posix_spawn_file_actions_destroy(&fa);
        close(fds[1]);
        out_ = fdopen(fds[0], "r");
        char line[256];
        // The first line: "listening on 127.0.0.1:PORT".
        if (fgets(line, sizeof line, out_) == nullptr) throw std::runtime_error(name + " printed nothing");
        std::string l(line);
        port_ = l.substr(l.rfind(':') + 1);
        port_.erase(port_.find_last_not_of("\r\n") + 1);
    }
    ~Example() {
        if (pid_ > 0) stop();
        if (out_) fclose(out_);
    }
    // SIGTERM, then the exit status; the rest of its output in `rest`.
    int stop(std::string *rest = nullptr) {
        kill(pid_, SIGTERM);
        std::string tail;
        char buf[256];
        std::size_t n;
        while ((n = fread(buf, 1, sizeof buf, out_)) > 0) tail.append(buf, n);
        int st = 0;
        waitpid(pid_, &st, 0);
        pid_ = -1;
        if (rest) *rest = tail;
        return st;
    }
    const std::string &port() const { return port_; }

private:
    pid_t pid_ = -1;
    FILE *out_ = nullptr;
    std::string port_;
};

TEST(Interop, EchoExample) {
    if (!have_websockets()) GTEST_SKIP() << "python3 with websockets not available";
    Example echo("echo_server");
    int status = 0;
    std::string out = python(
        "import asyncio, sys\n"
        "from websockets.asyncio.client import connect\n"
        "async def main(port):\n"
        "    async with connect(f'ws://127.0.0.1:{port}/') as ws:\n"
        "        big = bytes(range(256)) * 2048\n"
        "        for m in ['text', big, '']:\n"
        "            await ws.send(m)\n"
        "            print(type(m).__name__, (await ws.recv()) == m)\n"
        "asyncio.run(main(sys.argv[1]))\n",
        echo.port(), &status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(out, "str True\nbytes True\nstr True\n");
    EXPECT_EQ(echo.stop(), 0);
}

TEST(Interop, ChatExample) {
    if (!have_websockets()) GTEST_SKIP() << "python3 with websockets not available";
    Example chat("chat_server");
    int status = 0;
    std::string out = python(
        "import asyncio, sys\n"
        "from websockets.asyncio.client import connect\n"
        "async def main(port):\n"
        "    url = f'ws://127.0.0.1:{port}/chat?name='\n"
        "    async with connect(url + 'ann') as a:\n"
        "        print(await a.recv())\n"
        "        async with connect(url + 'bob') as b:\n"
        "            print(await a.recv()); print(await b.recv())\n"
        "            await b.send('hi all')\n"
        "            print(await a.recv()); print(await b.recv())\n"
        "        print(await a.recv())\n"
        "asyncio.run(main(sys.argv[1]))\n",
        chat.port(), &status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(out, "ann joined\nbob joined\nbob joined\nbob: hi all\nbob: hi all\nbob left\n");
    EXPECT_EQ(chat.stop(), 0);
}

TEST(Interop, VerifyTokenExample) {
    if (!have_websockets()) GTEST_SKIP() << "python3 with websockets not available";
    Example server("verify_token");
    int status = 0;
    std::string out = python(
        "import asyncio, sys\n"
        "from websockets.asyncio.client import connect\n"
        "from websockets.exceptions import InvalidStatus\n"
        "async def main(port):\n"
        "    for tok in ['sync-ok', 'async-ok', 'sync-bad', 'async-bad']:\n"
        "        try:\n"
        "            async with connect(f'ws://127.0.0.1:{port}/?token={tok}') as ws:\n"
        "                print(tok, await ws.recv())\n"
        "        except InvalidStatus as e:\n"
        "            print(tok, 'refused', e.response.status_code)\n"
        "asyncio.run(main(sys.argv[1]))\n",
        server.port(), &status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(out, "sync-ok authenticated\nasync-ok authenticated\nsync-bad refused 401\nasync-bad refused 401\n");
    std::string rest;
    EXPECT_EQ(server.stop(&rest), 0);
    EXPECT_NE(rest.find("welcome, token async-ok"), std::string::npos) << rest;
}

TEST(Interop, PythonWebsocketsClient) {
    if (!have_websockets()) GTEST_SKIP() << "python3 with websockets not available";
    int status = 0;
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
    std::string out = python(script, env.url(), &status);
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
