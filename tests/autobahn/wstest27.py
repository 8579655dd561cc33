# The original Autobahn|Testsuite fuzzing server (Python 2.7), bound to loopback.
#
#   python2.7 wstest27.py SPEC.json LIBDIR
# LIBDIR holds autobahntestsuite and its pinned dependencies (pip --target), added
# as a site directory so that namespace packages (zope) resolve. wstest's
# fuzzingserver listens on every interface; this launcher passes
# interface="127.0.0.1" instead, disables the embedded web server, and prints
# "ready" once listening. It is Python 2 code: the suite has no Python 3 port.
import json
import site
import sys

site.addsitedir(sys.argv[2])

from autobahn.twisted import websocket
from autobahntestsuite import fuzzing
from twisted.internet import reactor


def listen_on_loopback(factory, context=None):
    return websocket.listenWS(factory, context, interface="127.0.0.1")


def main():
    with open(sys.argv[1]) as spec_file:
        spec = json.load(spec_file)
    fuzzing.listenWS = listen_on_loopback
    fuzzing.startServer(spec, 0)
    reactor.callWhenRunning(lambda: (sys.stdout.write("ready\n"), sys.stdout.flush()))
    reactor.run()


if __name__ == "__main__":
    main()
