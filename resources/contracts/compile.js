#!/usr/bin/env node
// Compiles SwarmCoordinator.sol with the pinned solc-js (standard JSON, optimizer on) into
// SwarmCoordinator.json: {abi, bytecode, deployed_bytecode, storage_slots, solc_version, source_sha256,
// settings}. storage_slots names the slot of each top-level state variable: the local services move
// the contract's roles to their own keys on a chain that predates them (services/private_chain.py).
//   node resources/contracts/compile.js           write the artifact
//   node resources/contracts/compile.js --check   exit 1 if the committed artifact is stale
// Offline: needs only `npm ci` (solc is pinned in package.json), no compiler download.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const NAME = 'SwarmCoordinator';
const DIR = __dirname;
const SOURCE = path.join(DIR, `${NAME}.sol`);
const ARTIFACT = path.join(DIR, `${NAME}.json`);

// evmVersion pinned so the bytecode does not change with solc's default and runs on
// any local chain from cancun on (anvil's default hardfork is newer).
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'storageLayout'] } },
};

function compile() {
  const source = fs.readFileSync(SOURCE);
  const input = {
    language: 'Solidity',
    sources: { [`${NAME}.sol`]: { content: source.toString('utf8') } },
    settings: SETTINGS,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) console.error(e.formattedMessage || e.message);
  if (problems.length) process.exit(2);
  const contract = output.contracts[`${NAME}.sol`][NAME];
  return {
    contract_name: NAME,
    solc_version: solc.version(),
    source_sha256: crypto.createHash('sha256').update(source).digest('hex'),
    settings: { optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion },
    abi: contract.abi,
    bytecode: '0x' + contract.evm.bytecode.object,
    deployed_bytecode: '0x' + contract.evm.deployedBytecode.object,
    storage_slots: Object.fromEntries(contract.storageLayout.storage.map((v) => [v.label, Number(v.slot)])),
  };
}

function main() {
  const artifact = compile();
  const text = JSON.stringify(artifact, null, 2) + '\n';
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(ARTIFACT) ? fs.readFileSync(ARTIFACT, 'utf8') : '';
    if (current !== text) {
      console.error(`${path.basename(ARTIFACT)} is stale: run node resources/contracts/compile.js`);
      process.exit(1);
    }
    console.log(`${path.basename(ARTIFACT)} is up to date (solc ${artifact.solc_version})`);
    return;
  }
  fs.writeFileSync(ARTIFACT, text);
  const size = (artifact.deployed_bytecode.length - 2) / 2;
  console.log(`wrote ${path.relative(process.cwd(), ARTIFACT)} (solc ${artifact.solc_version}, ${size} bytes deployed)`);
}

main();
