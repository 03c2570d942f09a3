#!/usr/bin/env node
console.log('hotwarm: not yet');
