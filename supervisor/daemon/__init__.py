"""The daemon. Its packages, each importing only those before it:

system     the OS layer: descriptors, PTYs, processes, child exits, peers
spawn      which OpenCode context a child gets, and its environment
session    one terminal: reader, writer, ring, subscriptions, flow, roles, screen
registry   every session: ids, names, limits, events (a module)
clients    connections, requests and their handlers, where output goes
lifecycle  start, serve, upgrade in place, crash recovery, stop
"""
